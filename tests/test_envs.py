"""The locked environments: envs/*.in, their hash locks in envs/locks/, and envs/build.py (uv).

The build tests make tiny environments with Python 3.11 from an empty lock and from a wheel the
test writes itself (served through a find-links folder, as pip's configuration would name one), with
uv offline: nothing is downloaded. They use the uv that ``scripts/test.sh`` installed
(``.venvs/.uv``, or ``$STUCRS_UV``).
"""

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENVS = ROOT / "envs"
LOCKS = ENVS / "locks"
BUILD = ENVS / "build.py"
ENV_NAMES = ("workspace", "stucrs", "dezero", "tensorflow", "torch")
PIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[0-9][A-Za-z0-9.+!-]*$")
LOCK_LINE_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def load_build():
    spec = importlib.util.spec_from_file_location("stucrs_envs_build", BUILD)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


INPUTS = sorted(ENVS.glob("*.in"))


# --------------------------------------------------------------------------- inputs and locks


def test_every_environment_of_the_contract_has_an_input_and_a_lock():
    build = load_build()
    assert set(ENV_NAMES) <= set(build.available_envs(ROOT))
    for inp in INPUTS:
        assert (LOCKS / (inp.stem + ".txt")).is_file(), f"{inp.name} has no lock"


@pytest.mark.parametrize("inp", INPUTS, ids=lambda p: p.name)
def test_inputs_are_exact_pins(inp):
    for n, raw in enumerate(inp.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        where = f"{inp.name}:{n}: {raw!r}"
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            assert (inp.parent / line[3:].strip()).is_file(), "included file missing: " + where
            continue
        assert not line.startswith("-e"), "the checkout is installed by '# editable: .', not -e: " + where
        assert PIN_RE.match(line), "not an exact pin (NAME==VERSION): " + where


@pytest.mark.parametrize("inp", INPUTS, ids=lambda p: p.name)
def test_lock_matches_its_input_and_carries_hashes(inp):
    build = load_build()
    lock = build.check_lock(ROOT, inp)  # raises when the .in changed after locking
    text = lock.read_text(encoding="utf-8")
    packages = [m.group(1).lower() for m in map(LOCK_LINE_RE.match, text.splitlines()) if m]
    assert packages, lock
    # every requirement is followed by at least one sha256 hash (uv pip sync --require-hashes)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    for block in blocks:
        if LOCK_LINE_RE.match(block.splitlines()[0]):
            assert "--hash=sha256:" in block, block.splitlines()[0]
    # no path of this machine (pip's find-links or file:// index) is written into the repository
    assert not re.search(r"file://|/opt/|/root/|/home/|--find-links", text), lock
    assert build.download_mb(lock) > 0, "the header records the wheels' size"
    # every pin of the input is in the lock, at the same version
    for f in build.included_files(inp):
        for line in f.read_text(encoding="utf-8").splitlines():
            if PIN_RE.match(line.strip()):
                name, version = line.strip().split("==")
                name = re.sub(r"\[.*\]", "", name).lower()
                assert f"{name}=={version}" in text.lower(), (inp.name, name, version)


def lock_packages(name):
    text = (LOCKS / (name + ".txt")).read_text(encoding="utf-8")
    return {m.group(1).lower(): m.group(2) for m in map(LOCK_LINE_RE.match, text.splitlines()) if m}


def test_workspace_is_light():
    ws = lock_packages("workspace")
    heavy = sorted(p for p in ws if p in ("torch", "tensorflow", "tensorflow-cpu", "jax", "cupy-cuda12x")
                   or p.startswith("nvidia-"))
    assert not heavy, f"the workspace must not hold {heavy}"
    assert ws["snakemake"] == "9.27.1" and ws["snakefmt"] and ws["pytest"]


def test_cpu_and_gpu_builds_of_torch_are_separate_locks():
    cpu, gpu = lock_packages("torch"), lock_packages("torch-gpu")
    assert cpu["torch"] == "2.13.0+cpu" and not [p for p in cpu if p.startswith("nvidia-")]
    assert gpu["torch"] == "2.13.0" and [p for p in gpu if p.startswith("nvidia-")]
    assert "pytest" in cpu  # the PyTorch comparison tests run in this environment


def test_key_pins():
    assert lock_packages("dezero")["dezero"] == "0.0.13" and lock_packages("dezero")["numpy"] == "1.23.5"
    assert lock_packages("stucrs-gpu")["cupy-cuda12x"] == "14.2.0"
    assert lock_packages("stucrs-gpu")["numpy"] == lock_packages("stucrs")["numpy"]
    assert lock_packages("tensorflow")["tensorflow-cpu"] == "2.21.0"
    assert lock_packages("tensorflow-gpu")["tensorflow"] == "2.21.0"
    for name in ("psutil", "threadpoolctl", "tqdm"):
        versions = {lock_packages(e)[name] for e in ENV_NAMES}
        assert len(versions) == 1, (name, versions)


def test_editable_stucrs_where_stucrs_runs():
    build = load_build()
    for name in ("workspace", "stucrs", "torch"):
        assert build.directives(ENVS / (name + ".in"))["editable"], name
    for name in ("dezero", "tensorflow"):  # baselines never see the thing they are compared with
        assert not build.directives(ENVS / (name + ".in"))["editable"], name


def test_pip_sources_are_read_from_pip_configuration(monkeypatch, tmp_path):
    build = load_build()
    py = build.find_python(python311())[0]  # the base Python: its pip is the one envs/build.py asks
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    assert build.pip_sources(py) == ["--find-links", str(tmp_path)]
    # a machine whose pip names no source: an input's cpu-index is used instead
    monkeypatch.delenv("PIP_FIND_LINKS")
    info = {"cpu_index": "https://example.invalid/cpu"}
    assert build.sources_for(py, info)[:2] == ["--extra-index-url", "https://example.invalid/cpu"]


def test_wheel_bytes_counts_index_and_local_files(tmp_path):
    build = load_build()
    local = tmp_path / "a-1.0-py3-none-any.whl"
    local.write_bytes(b"x" * 1234)
    text = ('[[packages]]\nname = "a"\nwheels = [{ url = "file://%s", hashes = { sha256 = "0" } }]\n'
            '[[packages]]\nname = "b"\nwheels = [{ url = "https://x/b.whl", size = 1000, hashes = {} }]\n'
            '[[packages]]\nname = "c"\nsdist = { url = "https://x/c.tar.gz", size = 10, hashes = {} }\n' % local)
    assert build.wheel_bytes(text) == 1234 + 1000 + 10


# --------------------------------------------------------------------------- building with uv


def python311():
    for cand in (os.environ.get("STUCRS_PYTHON"), sys.executable if sys.version_info[:2] == (3, 11) else None,
                 shutil.which("python3.11")):
        if cand:
            return cand
    pytest.skip("no Python 3.11 to build environments with")


def uv_binary():
    cand = os.environ.get("STUCRS_UV") or str(ROOT / ".venvs" / ".uv" / "bin" / "uv")
    if not os.path.exists(cand):
        pytest.fail(f"uv not found at {cand}: `python3 envs/build.py workspace` installs it (scripts/test.sh does)")
    return cand


def run_build(root, *args, extra_env=None):
    env = dict(os.environ, STUCRS_PYTHON=python311(), STUCRS_UV=uv_binary(), UV_OFFLINE="1",
               PIP_CONFIG_FILE=os.devnull)
    for key in ("STUCRS_ENV_MODE", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL"):
        env.pop(key, None)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, str(BUILD), "--root", str(root)] + list(args), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=300)


def make_wheel(folder, name="stucrs_tinypkg", version="1.0"):
    """A minimal pure-Python wheel (no index needed); returns its path."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": b"VALUE = 42\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    path = Path(folder) / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, data in files.items():
            z.writestr(p, data)
    return path


def write_lock(root, stem, body=""):
    build = load_build()
    inp = root / "envs" / f"{stem}.in"
    lock = root / "envs" / "locks" / f"{stem}.txt"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(f"# inputs-sha256: {build.inputs_sha256(inp)}\n# download-mb: 0\n{body}")
    return lock


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A scratch repository root with envs/*.in and hand-made locks (no index needed)."""
    root = tmp_path_factory.mktemp("root")
    (root / "envs").mkdir()
    (root / "envs" / "tiny.in").write_text("# nothing from an index: the stdlib is enough\n# verify-import: json\n")
    write_lock(root, "tiny")
    (root / "envs" / "tiny-gpu.in").write_text("-r tiny.in\n# verify-import: sqlite3\n")
    write_lock(root, "tiny-gpu")
    wheels = root / "wheels"
    wheels.mkdir()
    good = hashlib.sha256(make_wheel(wheels).read_bytes()).hexdigest()
    (root / "envs" / "pkg.in").write_text("# verify-import: stucrs_tinypkg\nstucrs_tinypkg==1.0\n")
    write_lock(root, "pkg", f"stucrs-tinypkg==1.0 \\\n    --hash=sha256:{good}\n")
    (root / "envs" / "badhash.in").write_text("stucrs_tinypkg==1.0\n")
    write_lock(root, "badhash", "stucrs-tinypkg==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    (root / "envs" / "badimport.in").write_text("# verify-import: stucrs_no_such_module\n")
    write_lock(root, "badimport")
    return root


@pytest.fixture(scope="module")
def tiny_built(tiny_root):
    res = run_build(tiny_root, "tiny")
    assert res.returncode == 0, res.stdout
    return tiny_root, res.stdout


def test_build_is_quiet_and_writes_stamp(tiny_built):
    root, out = tiny_built
    venv = root / ".venvs" / "tiny"
    lines = out.strip().splitlines()
    assert lines[0].startswith("[envs] to build: tiny; up to 0 MB"), out
    assert "tiny: installing 0 locked packages" in out and "log: .venvs/logs/tiny.log" in out
    assert re.search(r"tiny: ready in \d+ s, \d+ MB", out), out
    assert len(lines) == 3, out  # uv's own output is in the log, not on the screen
    assert "uv" in (root / ".venvs" / "logs" / "tiny.log").read_text()
    stamp = json.loads((venv / ".stucrs-env-stamp").read_text())
    lock = root / "envs" / "locks" / "tiny.txt"
    assert stamp["lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert stamp["gpu"] is False and stamp["python"].startswith("3.11.")
    assert not list((root / ".venvs").glob("tiny.tmp-*"))
    for script in (venv / "bin").iterdir():  # moved with the env: no line names the build folder
        if script.is_file() and not script.is_symlink():
            assert b".tmp-" not in script.read_bytes(), script
    assert subprocess.run([str(venv / "bin" / "python"), "-c", "import json"]).returncode == 0


def test_second_build_is_up_to_date(tiny_built):
    root, _ = tiny_built
    venv = root / ".venvs" / "tiny"
    before = (venv / ".stucrs-env-stamp").stat().st_mtime_ns
    res = run_build(root, "tiny")
    assert res.returncode == 0 and res.stdout.strip() == "[envs] tiny: up to date", res.stdout
    assert (venv / ".stucrs-env-stamp").stat().st_mtime_ns == before


def test_stale_lock_is_a_clear_error(tiny_built):
    root, _ = tiny_built
    inp = root / "envs" / "tiny.in"
    original = inp.read_text()
    try:
        inp.write_text(original + "# edited\n")
        res = run_build(root, "tiny")
        assert res.returncode == 1
        assert "envs/locks/tiny.txt does not match envs/tiny.in" in res.stdout
        assert "python3 envs/build.py --lock tiny" in res.stdout
    finally:
        inp.write_text(original)


def test_gpu_variant_and_flag(tiny_built):
    root, _ = tiny_built
    res = run_build(root, "tiny", "--gpu")
    assert res.returncode == 0 and "tiny: installing" in res.stdout, res.stdout
    stamp = json.loads((root / ".venvs" / "tiny" / ".stucrs-env-stamp").read_text())
    assert stamp["gpu"] is True and stamp["input"] == "envs/tiny-gpu.in" and stamp["lock"] == "envs/locks/tiny-gpu.txt"
    assert "tiny: installing" in run_build(root, "tiny", "--cpu").stdout  # the flag differs: rebuilt


def test_locked_wheel_installs_from_pip_find_links(tiny_root):
    res = run_build(tiny_root, "pkg", extra_env={"PIP_FIND_LINKS": str(tiny_root / "wheels")})
    assert res.returncode == 0, res.stdout
    py = tiny_root / ".venvs" / "pkg" / "bin" / "python"
    out = subprocess.run([str(py), "-c", "import stucrs_tinypkg as p; print(p.VALUE)"], stdout=subprocess.PIPE,
                         universal_newlines=True)
    assert out.stdout.strip() == "42"


@pytest.mark.parametrize("name, why", [("badhash", "hash"), ("badimport", "stucrs_no_such_module")])
def test_failed_build_leaves_nothing_and_names_the_log(tiny_root, name, why):
    res = run_build(tiny_root, name, extra_env={"PIP_FIND_LINKS": str(tiny_root / "wheels")})
    assert res.returncode == 1
    assert "command failed" in res.stdout and f".venvs/logs/{name}.log" in res.stdout
    assert why in res.stdout.lower()
    venvs = tiny_root / ".venvs"
    assert not (venvs / name).exists() and not list(venvs.glob(name + ".tmp-*"))


def test_list_and_print_python(tiny_built):
    root, _ = tiny_built
    res = run_build(root, "--list")
    listing = {line.split()[0]: line for line in res.stdout.splitlines()}
    assert "tiny-gpu.in" in listing["tiny"] and "not built" in listing["badimport"]
    res = run_build(root, "--print-python", "badimport")
    assert res.returncode == 1 and "not built" in res.stdout


def test_missing_python_is_a_clear_error(tmp_path):
    res = run_build(tmp_path, "tiny", extra_env={"STUCRS_PYTHON": str(tmp_path / "no-python3.11")})
    assert res.returncode == 1 and "STUCRS_PYTHON" in res.stdout
    res = subprocess.run([sys.executable, str(BUILD), "--root", str(tmp_path), "tiny"], env={"PATH": str(tmp_path)},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 1 and "Python 3.11 not found" in res.stdout
    assert "apt-get install python3.11" in res.stdout and "pyenv install 3.11" in res.stdout


def test_unknown_env_is_a_clear_error(tiny_root):
    res = run_build(tiny_root, "nosuchenv")
    assert res.returncode == 1 and "no environment 'nosuchenv'" in res.stdout and "tiny" in res.stdout


def test_mode_selection(monkeypatch):
    build = load_build()
    monkeypatch.delenv("STUCRS_ENV_MODE", raising=False)
    assert build.resolve_mode(None) is False and build.resolve_mode("gpu") is True
    monkeypatch.setenv("STUCRS_ENV_MODE", "gpu")
    assert build.resolve_mode(None) is True and build.resolve_mode("cpu") is False
    monkeypatch.setattr(build, "gpu_present", lambda: True)
    assert build.resolve_mode("auto") is True
    monkeypatch.setenv("STUCRS_ENV_MODE", "tpu")
    with pytest.raises(build.BuildError):
        build.resolve_mode(None)
