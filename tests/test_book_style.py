"""The book's import style, run through ``python -m stucrs.as_dezero``, prints what DeZero prints.

Each script in ``tests/book_style/`` (written for this project in the style of the book's step
scripts: ``import dezero``, ``from dezero.core_simple import ...``, ``dezero.is_simple_core``) runs
unmodified with the real DeZero 0.0.13 (``.venvs/dezero``) and with StuCrs through the runner; the
printed text must be the same and the printed numbers equal to rtol 1e-9.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_dezero_compat import DEZERO_PYTHON, _compare

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "tests" / "book_style").glob("*.py"))


def _run(argv, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_scripts_exist():
    assert len(SCRIPTS) >= 8, SCRIPTS


@pytest.mark.skipif(not DEZERO_PYTHON.exists(), reason=f"the DeZero environment is not built ({DEZERO_PYTHON})")
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_script_prints_what_dezero_prints(script, tmp_path):
    dz = _run([str(DEZERO_PYTHON), str(script)], tmp_path)
    assert dz.returncode == 0, f"the script fails on DeZero itself (fix the script):\n{dz.stderr}"
    st = _run([sys.executable, "-m", "stucrs.as_dezero", str(script)], tmp_path)
    assert st.returncode == 0, f"StuCrs failed where DeZero did not:\n{st.stderr}\n--- DeZero ---\n{dz.stdout}"
    assert dz.stdout.strip(), "the script printed nothing"
    problems = _compare(dz.stdout, st.stdout, rtol=1e-9, atol=1e-12)
    assert not problems, "\n".join(problems) + f"\n--- DeZero ---\n{dz.stdout}--- StuCrs ---\n{st.stdout}"


def test_runner_never_installs_dezero(tmp_path):
    # the alias lives in the process that runs the script only
    script = tmp_path / "probe.py"
    script.write_text("import sys, dezero, dezero.functions as F, dezero.core_simple as CS\n"
                      "print(dezero.__name__, F.__name__, CS.__name__, sys.argv[1:])\n")
    r = _run([sys.executable, "-m", "stucrs.as_dezero", str(script), "a", "--b"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["stucrs", "stucrs.functions", "stucrs.core_simple", "['a',", "'--b']"]
    plain = _run([sys.executable, "-c", "import dezero"], tmp_path)
    assert plain.returncode != 0 and "No module named 'dezero'" in plain.stderr


def test_runner_wins_over_a_dezero_folder_beside_the_script(tmp_path):
    # the book's scripts put the book's own dezero/ on sys.path; the runner still serves StuCrs
    (tmp_path / "dezero").mkdir()
    (tmp_path / "dezero" / "__init__.py").write_text("raise SystemExit('the book copy was imported')\n")
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "s.py").write_text(
        "import os, sys\nsys.path.append(os.path.join(os.path.dirname(__file__), '..'))\n"
        "import dezero\nfrom dezero import Variable\nprint(dezero.__name__, Variable.__module__)\n")
    r = _run([sys.executable, "-m", "stucrs.as_dezero", str(steps / "s.py")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["stucrs", "stucrs.core"]


def test_runner_keeps_stucrs_module_specs(tmp_path):
    # a submodule imported only through its alias keeps its own __spec__ (importlib.reload works)
    script = tmp_path / "s.py"
    script.write_text("import importlib, dezero.as_dezero as a, stucrs.as_dezero as b\n"
                      "print(a is b, b.__spec__.name)\nimportlib.reload(b)\n")
    r = _run([sys.executable, "-m", "stucrs.as_dezero", str(script)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "stucrs.as_dezero"]


def test_runner_path_is_the_scripts_folder_only(tmp_path):
    # like `python script.py`: the script's folder first, not the caller's current folder
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "shadow_mod.py").write_text("print('from the current folder')\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "s.py").write_text(
        "import sys, os\nprint(sys.path[0] == os.path.dirname(os.path.abspath(__file__)))\n"
        "try:\n    import shadow_mod\nexcept ImportError:\n    print('not shadowed')\n")
    r = _run([sys.executable, "-m", "stucrs.as_dezero", str(tmp_path / "elsewhere" / "s.py")], tmp_path / "here")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "not", "shadowed"]


def test_runner_names_what_stucrs_lacks(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import dezero.no_such_part\n")
    r = _run([sys.executable, "-m", "stucrs.as_dezero", str(script)], tmp_path)
    assert r.returncode != 0
    assert "dezero.no_such_part" in r.stderr and "stucrs.no_such_part" in r.stderr


def test_runner_usage_errors(tmp_path):
    r = _run([sys.executable, "-m", "stucrs.as_dezero"], tmp_path)
    assert r.returncode == 2 and "usage" in r.stderr
    r = _run([sys.executable, "-m", "stucrs.as_dezero", "missing.py"], tmp_path)
    assert r.returncode == 2 and "no such script" in r.stderr


def test_simple_core_is_standalone_and_array_gradients():
    import numpy as np
    import stucrs
    from stucrs import core_simple as cs
    assert stucrs.is_simple_core is False
    x = cs.Variable(np.array(3.0))
    y = x ** 2 + 2 * x
    y.backward()
    # the gradient is a plain NumPy value (array or scalar), not a Variable as in stucrs.core
    assert not isinstance(x.grad, cs.Variable) and float(x.grad) == 8.0
    src = Path(cs.__file__).read_text(encoding="utf-8")
    imports = [ln for ln in src.splitlines() if ln.startswith(("import ", "from "))]
    assert imports == ["import contextlib", "import weakref", "import numpy as np"], imports
    assert len(src.splitlines()) < 300  # small enough to read next to the book
