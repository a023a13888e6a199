"""``--openblas-kernel``: the better of an inherited OPENBLAS_CORETYPE and OpenBLAS's own choice.

Units run the decision with a fake probe (no process started); the end-to-end tests run the harness
in the framework environments with an override set and read the kernel each run recorded.
"""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from workflow.bench import blas_kernel  # noqa: E402

X86 = platform.machine().lower() in ("x86_64", "amd64")


@pytest.fixture
def clean_env(monkeypatch):
    for var in blas_kernel.OVERRIDE_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def fake_probe(kernel, why=None):
    calls = []

    def probe(python):
        calls.append(python)
        return kernel, why or ("OpenBLAS's own choice is %s" % kernel)
    probe.calls = calls
    return probe


def test_generation_orders_the_instruction_sets():
    g = blas_kernel.generation
    assert g("Prescott") < g("Nehalem") < g("Sandybridge") < g("Haswell") < g("SkylakeX")
    assert g("Barcelona") < g("Haswell") == g("Zen") and g("Cooperlake") == g("SKYLAKEX")
    assert g("neoversen1") is None and g("") is None and g(None) is None


def test_no_override_changes_nothing(clean_env):
    probe = fake_probe("SkylakeX")
    d = blas_kernel.choose("auto", probe=probe, numpy_loaded=False)
    assert d["inherited"] == {} and d["override_kept"] is False and probe.calls == []
    assert "no override set" in d["why"]


def test_auto_drops_an_older_override(clean_env):
    clean_env.setenv("OPENBLAS_CORETYPE", "Haswell")
    clean_env.setenv("OPENBLAS_L2_SIZE", "512")
    d = blas_kernel.choose("auto", python="/env/bin/python", probe=fake_probe("SkylakeX"),
                           numpy_loaded=False)
    assert d["override_kept"] is False and d["own_kernel"] == "SkylakeX"
    assert d["inherited"] == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}
    assert "OPENBLAS_CORETYPE" not in os.environ and "OPENBLAS_L2_SIZE" not in os.environ
    assert "SkylakeX" in d["why"] and "Haswell" in d["why"]


@pytest.mark.parametrize("own", ["Barcelona", "Haswell", "Zen"])
def test_auto_keeps_an_override_that_is_as_new_or_newer(clean_env, own):
    # DeZero's OpenBLAS 0.3.20 falls back to Barcelona on a CPU it does not know: keep Haswell
    clean_env.setenv("OPENBLAS_CORETYPE", "Haswell")
    clean_env.setenv("OPENBLAS_L2_SIZE", "512")
    d = blas_kernel.choose("auto", probe=fake_probe(own), numpy_loaded=False)
    assert d["override_kept"] is True and d["own_kernel"] == own
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell" and os.environ["OPENBLAS_L2_SIZE"] == "512"


def test_auto_keeps_the_override_when_the_probe_fails(clean_env):
    clean_env.setenv("OPENBLAS_CORETYPE", "Haswell")
    d = blas_kernel.choose("auto", probe=fake_probe(None, "the probe failed with exit code 1 (x)"),
                           numpy_loaded=False)
    assert d["override_kept"] is True and os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    assert d["why"].startswith("the probe failed") and d["why"].endswith("the override is kept")


def test_auto_leaves_a_cache_size_alone(clean_env):
    clean_env.setenv("OPENBLAS_L2_SIZE", "512")
    d = blas_kernel.choose("auto", probe=fake_probe("SkylakeX"), numpy_loaded=False)
    assert d["override_kept"] is True and os.environ["OPENBLAS_L2_SIZE"] == "512"


def test_inherit_and_native(clean_env):
    clean_env.setenv("OPENBLAS_CORETYPE", "Prescott")
    probe = fake_probe("SkylakeX")
    d = blas_kernel.choose("inherit", probe=probe, numpy_loaded=False)
    assert d["override_kept"] is True and os.environ["OPENBLAS_CORETYPE"] == "Prescott"
    d = blas_kernel.choose("native", probe=probe, numpy_loaded=False)
    assert d["override_kept"] is False and "OPENBLAS_CORETYPE" not in os.environ
    assert probe.calls == []  # neither mode needs the probe


def test_too_late_once_numpy_is_loaded(clean_env):
    clean_env.setenv("OPENBLAS_CORETYPE", "Haswell")
    d = blas_kernel.choose("native", probe=fake_probe("SkylakeX"), numpy_loaded=True)
    assert d["override_kept"] is True and os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    assert "imported before" in d["why"]


def test_bad_mode_names_the_allowed_ones():
    with pytest.raises(ValueError, match="auto, inherit, native"):
        blas_kernel.choose("fast", numpy_loaded=False)


def test_probe_of_a_missing_interpreter_says_so():
    kernel, why = blas_kernel.probe_own_kernel("/nonexistent/bin/python")
    assert kernel is None and "did not run" in why


def test_probe_reads_the_kernel_of_this_numpy():
    pytest.importorskip("threadpoolctl")
    kernel, why = blas_kernel.probe_own_kernel(sys.executable)
    assert kernel, why  # NumPy's wheels multiply with OpenBLAS, which names its kernel
    assert why == "OpenBLAS's own choice is %s" % kernel
    if X86:
        assert blas_kernel.generation(kernel) is not None, kernel


# --------------------------------------------------------------------------- end to end


def _venv_python(name):
    py = REPO / ".venvs" / name / "bin" / "python"
    if not py.exists():
        pytest.skip(".venvs/%s is missing (build it with `python3 envs/build.py %s`)" % (name, name))
    return str(py)


def _floor_kernel(python, tmp_path, override, *extra):
    """(recorded decision, kernel NumPy loaded) of a tiny floor run with ``override`` inherited."""
    env = {k: v for k, v in os.environ.items() if k not in blas_kernel.OVERRIDE_VARS}
    env.update({"OPENBLAS_CORETYPE": override, "OPENBLAS_L2_SIZE": "512"})
    out = tmp_path / ("floor-%s-%d.json" % (override, len(extra)))
    r = subprocess.run([python, "-m", "workflow.bench", "floor", "--network", "mlp1", "--out",
                        str(out), "--train-size", "200", "--test-size", "100", "--epochs", "1",
                        "--no-progress", "--threads", "1", *extra],
                       cwd=str(REPO), capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    environment = json.loads(out.read_text())["environment"]
    loaded = [p["architecture"] for p in environment["blas"] if p.get("internal_api") == "openblas"]
    assert len(loaded) == 1, environment["blas"]
    return environment["openblas_kernel"], loaded[0]


@pytest.mark.parametrize("env_name", ["stucrs", "dezero"])
def test_auto_runs_with_the_newer_kernel(env_name, tmp_path):
    python = _venv_python(env_name)
    own, why = blas_kernel.probe_own_kernel(python)
    assert own, why
    for override in ("Sandybridge", "Haswell"):
        decision, loaded = _floor_kernel(python, tmp_path, override)
        assert decision["mode"] == "auto" and decision["own_kernel"] == own
        assert decision["inherited"] == {"OPENBLAS_CORETYPE": override, "OPENBLAS_L2_SIZE": "512"}
        newer = (blas_kernel.generation(own) or 0) > blas_kernel.generation(override)
        assert decision["override_kept"] is (not newer), decision
        assert loaded.lower() == (own if newer else override).lower(), (decision, loaded)


def test_inherit_runs_with_the_override(tmp_path):
    python = _venv_python("stucrs")
    decision, loaded = _floor_kernel(python, tmp_path, "Sandybridge", "--openblas-kernel", "inherit")
    assert decision["mode"] == "inherit" and decision["override_kept"] is True
    assert loaded.lower() == "sandybridge"
