"""StuCrs against the real DeZero (0.0.13, in ``.venvs/dezero``): public names and behaviour.

The promise of StuCrs is that a reader can write ``import stucrs`` where the book writes
``import dezero``. This module checks that promise against the published DeZero itself:

1. **Public names.** Every public name of ``dezero``, ``dezero.functions``, ``dezero.utils``, ...
   (listed in the DeZero environment) must exist in the matching ``stucrs`` module, minus an explicit,
   commented allow-list of intentional omissions (:data:`INTENTIONAL_OMISSIONS`). The public
   attributes of the main classes and of sample instances are checked the same way.
2. **Behaviour.** Each snippet of :data:`SNIPPETS` is plain code that uses ``dz`` (the package),
   ``F`` (its ``functions``) and, where declared, ``L`` / ``M`` / ``O`` / ``DS`` / ``DL`` / ``T`` / ``FC``
   and prints results. It runs once in the DeZero environment (``import dezero as dz``) and once in
   a fresh StuCrs process (``import stucrs as dz``); the printed numbers must agree (rtol 1e-6) and
   the text around them must be the same.

Both sides run in subprocesses (DeZero needs its own NumPy 1.23; a fresh StuCrs process keeps
``Config`` and the global NumPy seed of this test session untouched). Inputs are float64 unless a
snippet says otherwise, so the dtype rules of NumPy 1 and NumPy 2 give the same numbers.

The whole module is skipped only when ``.venvs/dezero`` has not been built
(``python3 envs/build.py dezero``; ``scripts/test.sh`` and CI build it).
"""
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mnist_setup import SKIP_REASON, find_mnist

ROOT = Path(__file__).resolve().parents[1]
DEZERO_PYTHON = ROOT / ".venvs" / "dezero" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

pytestmark = pytest.mark.skipif(
    not DEZERO_PYTHON.exists(),
    reason=f"the DeZero environment is not built ({DEZERO_PYTHON} is missing): "
           f"run `python3 envs/build.py dezero` (scripts/test.sh and CI build it)",
)

_MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


MNIST_DIR = find_mnist()

# dezero module suffix ("" = the package itself) -> alias used by snippets and instance expressions
MODULES = {
    "": "dz",
    "functions": "F",
    "utils": "U",
    "cuda": "C",
    "layers": "L",
    "models": "M",
    "optimizers": "O",
    "datasets": "DS",
    "dataloaders": "DL",
    "transforms": "T",
    "functions_conv": "FC",
    "core_simple": "CS",
}

# Names of DeZero that StuCrs deliberately does not provide: module suffix -> {name: reason}.
# Imported third-party modules (np, os, weakref, gzip, urllib, PIL's Image, matplotlib's plt, ...) are
# never compared: only non-module attributes are, plus the package's own submodules at the top level.
INTENTIONAL_OMISSIONS = {
    "cuda": {
        # dezero.cuda imports Variable only for an isinstance check; stucrs.core imports stucrs.cuda,
        # so the reverse import would be circular, and nobody imports Variable from the cuda module.
        "Variable": "import artefact of dezero/cuda.py (circular in StuCrs)",
    },
    "datasets": {
        # Datasets StuCrs does not ship: large downloads outside the book's MNIST steps, and PIL images.
        "CIFAR10": "not shipped (large download, PIL images)",
        "CIFAR100": "not shipped (large download, PIL images)",
        "ImageNet": "not shipped (labels only in DeZero; needs PIL)",
        "BigData": "not shipped (not in 0.0.13; listed for later DeZero versions)",
    },
    "dataloaders": {
        "pil_available": "PIL is not a StuCrs dependency",
    },
    "transforms": {
        # PIL-image transforms: StuCrs transforms work on NumPy/CuPy arrays only.
        "Convert": "PIL-image transform",
        "Resize": "PIL-image transform",
        "CenterCrop": "PIL-image transform",
        "ToArray": "PIL-image -> array transform",
        "ToPIL": "array -> PIL-image transform",
        "RandomHorizontalFlip": "PIL-image transform (an empty class in DeZero 0.0.13)",
    },
}

# Class attributes / instance attributes compared with DeZero: (label, module suffix, expression).
# The expression is evaluated in both frameworks with the aliases of MODULES; for an instance the
# attributes it holds (``dir(obj)``) count, so DeZero's instance attributes (``x.grad``,
# ``optimizer.lr``, ``loader.iteration``, ...) must exist on the StuCrs object too.
MEMBER_CHECKS = [
    ("Variable instance", "", "dz.Variable(np.array(1.0))"),
    ("Parameter instance", "", "dz.Parameter(np.array(1.0))"),
    ("Function class", "", "dz.Function"),
    ("core_simple Variable instance", "core_simple", "CS.Variable(np.array(1.0))"),
    ("core_simple Function class", "core_simple", "CS.Function"),
    ("core_simple Config class", "core_simple", "CS.Config"),
    ("Config class", "", "dz.Config"),
    ("Layer instance", "layers", "L.Layer()"),
    ("Linear instance", "layers", "L.Linear(3, in_size=2)"),
    ("Conv2d instance", "layers", "L.Conv2d(2, 3, in_channels=1)"),
    ("Deconv2d instance", "layers", "L.Deconv2d(2, 3, in_channels=1)"),
    ("RNN instance", "layers", "L.RNN(3, in_size=2)"),
    ("LSTM instance", "layers", "L.LSTM(3, in_size=2)"),
    ("EmbedID instance", "layers", "L.EmbedID(5, 3)"),
    ("BatchNorm layer instance", "layers", "L.BatchNorm()"),
    ("Model instance", "models", "M.Model()"),
    ("Sequential instance", "models", "M.Sequential(L.Linear(2))"),
    ("MLP instance", "models", "M.MLP((3, 1))"),
    ("SGD instance", "optimizers", "O.SGD()"),
    ("MomentumSGD instance", "optimizers", "O.MomentumSGD()"),
    ("AdaGrad instance", "optimizers", "O.AdaGrad()"),
    ("AdaDelta instance", "optimizers", "O.AdaDelta()"),
    ("Adam instance", "optimizers", "O.Adam()"),
    ("WeightDecay instance", "optimizers", "O.WeightDecay(0.1)"),
    ("ClipGrad instance", "optimizers", "O.ClipGrad(1.0)"),
    ("Dataset instance", "datasets", "DS.Dataset()"),
    ("Spiral instance", "datasets", "DS.Spiral(train=True)"),
    ("SinCurve instance", "datasets", "DS.SinCurve(train=True)"),
    ("DataLoader instance", "dataloaders", "DL.DataLoader(DS.Spiral(), 10, shuffle=False)"),
    ("SeqDataLoader instance", "dataloaders", "DL.SeqDataLoader(DS.SinCurve(), 10)"),
    ("Compose instance", "transforms", "T.Compose([T.Flatten()])"),
    ("Normalize instance", "transforms", "T.Normalize(0.5, 2.0)"),
    ("AsType instance", "transforms", "T.AsType(np.float64)"),
]

# Names of class/instance attributes that are never compared (Python's own machinery).
_PYTHON_MEMBERS = {"__dict__", "__weakref__", "__module__", "__slots__", "__annotations__",
                   "__firstlineno__", "__static_attributes__", "__qualname__", "__doc__"}

# =============================================================================
# The runner: executed with ``python -c RUNNER PKG REQUEST_JSON RESULT_JSON`` in either environment.
# =============================================================================
RUNNER = r'''
import contextlib, importlib, io, json, sys, traceback, types

pkg, request_path, result_path = sys.argv[1:4]
import os
os.environ.setdefault("MPLBACKEND", "Agg")
import numpy as np
if int(np.__version__.split(".")[0]) >= 2:
    np.set_printoptions(legacy="1.25")  # print NumPy scalars inside containers as NumPy 1 did

with open(request_path) as f:
    request = json.load(f)
modules = request["modules"]  # suffix -> alias
result = {}

def load(suffix):
    """Import pkg.suffix; None when that module does not exist (other import errors propagate)."""
    name = pkg + ("." + suffix if suffix else "")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise

def public_names(mod):
    out = {}
    for n, v in vars(mod).items():
        if n.startswith("_"):
            continue
        if isinstance(v, types.ModuleType):
            out[n] = "module:" + v.__name__
        else:
            out[n] = "object"
    return out

def members(obj):
    return sorted(n for n in dir(obj) if not (n.startswith("_") and not n.startswith("__")))

def namespace(suffixes):
    ns = {"np": np}
    missing = []
    for suffix in [""] + list(suffixes):
        mod = load(suffix)
        if mod is None:
            missing.append(pkg + "." + suffix)
        else:
            ns[modules[suffix]] = mod
    ns["Variable"] = ns["dz"].Variable
    ns["Parameter"] = ns["dz"].Parameter
    if "F" not in ns:
        ns["F"] = importlib.import_module(pkg + ".functions")
    return ns, missing

def reset_state(ns):
    np.random.seed(0)
    cfg = ns["dz"].Config
    cfg.enable_backprop = True
    cfg.train = True

if request["task"] == "names":
    # the package first, before anything imports its submodules: `import pkg` alone must do
    top = load("")
    result["names"] = {"": public_names(top)}
    result["missing_modules"] = []
    for suffix in modules:
        if not suffix:
            continue
        try:
            mod = load(suffix)
        except Exception as e:  # noqa: BLE001
            result["missing_modules"].append(f"{pkg}.{suffix} ({type(e).__name__}: {e})")
            continue
        if mod is None:
            result["missing_modules"].append(f"{pkg}.{suffix} (no such module)")
            continue
        result["names"][suffix] = public_names(mod)
    result["members"] = {}
    for label, suffix, expr in request["members"]:
        try:
            ns, missing = namespace([s for s in modules if s])
            if missing and pkg + "." + suffix in missing:
                result["members"][label] = {"error": f"module {pkg}.{suffix} does not exist"}
                continue
            obj = eval(expr, ns)
            result["members"][label] = {"members": members(obj)}
        except Exception as e:  # noqa: BLE001
            result["members"][label] = {"error": f"{type(e).__name__}: {e}"}

elif request["task"] == "snippets":
    result["snippets"] = {}
    for snip in request["snippets"]:
        entry = {"out": "", "error": None, "missing": []}
        buf = io.StringIO()
        try:
            ns, missing = namespace(snip["requires"])
            entry["missing"] = missing
            if not missing:
                reset_state(ns)
                with contextlib.redirect_stdout(buf):
                    exec(compile(snip["code"], "<snippet " + snip["name"] + ">", "exec"), ns)
        except BaseException as e:  # noqa: BLE001
            entry["error"] = "".join(traceback.format_exception_only(type(e), e)).strip()
            entry["traceback"] = traceback.format_exc()[-3000:]
        entry["out"] = buf.getvalue()
        result["snippets"][snip["name"]] = entry

with open(result_path, "w") as f:
    json.dump(result, f)
'''


def _run(python, pkg, request, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"{pkg}-run")
    req = work / "request.json"
    res = work / "result.json"
    req.write_text(json.dumps(dict(request, modules=MODULES)))
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    if pkg == "stucrs":
        env["PYTHONPATH"] = str(ROOT)
    # HOME inside the work folder: nothing (DeZero's ~/.dezero cache, plots) is written outside it
    env["HOME"] = str(work)
    env.pop("STUCRS_MNIST_DIR", None)
    if MNIST_DIR is not None:
        # both frameworks read the offline MNIST copy: DeZero finds it in its download cache
        (work / ".dezero").mkdir()
        for f in _MNIST_FILES:
            (work / ".dezero" / f).symlink_to(MNIST_DIR / f)
        env["STUCRS_MNIST_DIR"] = str(MNIST_DIR)
    proc = subprocess.run([str(python), "-c", RUNNER, pkg, str(req), str(res)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not res.exists():
        pytest.fail(f"the {pkg} runner failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-5000:]}")
    return json.loads(res.read_text())


# =============================================================================
# 1. Public names
# =============================================================================
@pytest.fixture(scope="module")
def names(tmp_path_factory):
    request = {"task": "names", "members": MEMBER_CHECKS}
    dz = _run(DEZERO_PYTHON, "dezero", request, tmp_path_factory)
    st = _run(sys.executable, "stucrs", request, tmp_path_factory)
    assert not dz["missing_modules"], dz["missing_modules"]
    return dz, st


def _expected_names(suffix, dz_names):
    omitted = INTENTIONAL_OMISSIONS.get(suffix, {})
    own_modules = {"dezero." + s for s in MODULES if s} | {"dezero.core"}
    expected = []
    for name, kind in dz_names.items():
        if name in omitted:
            continue
        if kind.startswith("module:"):
            # only the top level exposes submodules (`import dezero; dezero.layers.Linear`)
            if suffix != "" or kind[len("module:"):] not in own_modules:
                continue
        expected.append(name)
    return sorted(expected)


@pytest.mark.parametrize("suffix", list(MODULES), ids=[s or "dezero" for s in MODULES])
def test_public_names(names, suffix):
    dz, st = names
    module = "stucrs" + ("." + suffix if suffix else "")
    if suffix and suffix not in st["names"]:
        problem = [m for m in st["missing_modules"] if m.startswith(module + " ")]
        pytest.fail(f"{module} cannot be imported: {problem}")
    expected = _expected_names(suffix, dz["names"][suffix])
    have = st["names"][suffix]
    missing = [n for n in expected if n not in have]
    assert not missing, (f"{module} lacks DeZero's public names {missing} "
                         f"(add them, or list them with a reason in INTENTIONAL_OMISSIONS)")


def test_omission_list_is_current(names):
    """Every allow-listed omission is really a DeZero name that StuCrs lacks (or the list is stale)."""
    dz, st = names
    stale = []
    for suffix, omitted in INTENTIONAL_OMISSIONS.items():
        for name in omitted:
            if name == "BigData":  # listed for later DeZero versions; absent from 0.0.13
                continue
            if name not in dz["names"].get(suffix, {}):
                stale.append(f"{suffix}.{name} (not in DeZero)")
            elif name in st["names"].get(suffix, {}):
                stale.append(f"{suffix}.{name} (StuCrs has it now)")
    assert not stale, stale


@pytest.mark.parametrize("label", [m[0] for m in MEMBER_CHECKS])
def test_class_and_instance_members(names, label):
    dz, st = names
    want = dz["members"][label]
    assert "error" not in want, f"DeZero side: {want['error']}"
    have = st["members"][label]
    if "error" in have:
        pytest.fail(f"StuCrs side of {label!r}: {have['error']}")
    missing = sorted(set(want["members"]) - set(have["members"]) - _PYTHON_MEMBERS)
    assert not missing, f"StuCrs {label} lacks DeZero's attributes {missing}"


# =============================================================================
# 2. Behaviour
# =============================================================================
class Snippet:
    def __init__(self, name, code, requires=(), rtol=1e-6, atol=1e-9, note="", needs_mnist=False):
        self.name = name
        self.needs_mnist = needs_mnist
        self.code = textwrap.dedent(code).strip() + "\n"
        self.requires = tuple(requires)
        self.rtol = rtol
        self.atol = atol
        self.note = note


_NN = ("layers", "models", "optimizers")

SNIPPETS = [
    # --- steps 1-24: Variable, Function, operator overloading ------------------------------------
    Snippet("variable_basics", """
        x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), name='x')
        print(x)
        print(repr(x))
        print(len(x), x.shape, x.ndim, x.size, x.dtype, x.name)
        print(Variable(None))
        print(Variable(np.array(1.0)))
        print(x.grad, x.creator, x.generation)
        print(type(x).__name__, type(dz.Parameter(np.array(1.0))).__name__)
        print(isinstance(dz.Parameter(np.array(1.0)), Variable))
        print(dz.as_array(3.0), type(dz.as_array(3.0)).__name__)
        print(type(dz.as_variable(np.array(1.0))).__name__, dz.as_variable(x) is x)
    """),
    Snippet("variable_rejects_non_arrays", """
        for bad in ([1, 2], 1.0, 'abc'):
            try:
                Variable(bad)
                print('accepted', type(bad).__name__)
            except TypeError:
                print('TypeError', type(bad).__name__)
    """),
    Snippet("operator_overloading", """
        a = Variable(np.array(3.0))
        b = Variable(np.array(2.0))
        c = Variable(np.array(1.0))
        y = a * b + c
        y.backward()
        print(y, a.grad, b.grad, c.grad)
        a.cleargrad(); b.cleargrad()
        y = 2.0 * a + 1 - a / b + 3 / b - (-a) ** 2 + np.array(2.0) * b - 4.0 - a * 3
        y.backward()
        print(y, a.grad, b.grad)
        print(type(np.array([2.0]) + a).__name__, (np.array([2.0]) + a).data)
        print(type(a + np.array(1.0)).__name__, (3.0 - a).data, (3.0 / b).data, (a ** 3).data)
    """),
    Snippet("function_with_raw_array", """
        y = F.sin(np.array([0.5, 1.0]))
        print(type(y).__name__, y)
        y = F.exp(np.array(1.0))
        y.backward()
        print(y.grad)
    """),
    Snippet("square_exp_chain_step9", """
        x = Variable(np.array(0.5))
        a = F.exp(x) ** 2
        y = F.exp(a) ** 2 + F.exp(x * x)
        y.backward()
        print(y, x.grad)
    """),
    Snippet("same_variable_twice_and_generations", """
        x = Variable(np.array(2.0))
        a = x ** 2
        y = (a ** 2) + (a ** 2)
        y.backward()
        print(y, x.grad, x.generation, a.generation, y.generation)
    """),
    Snippet("backward_accumulates_and_cleargrad", """
        x = Variable(np.array(3.0))
        y = x + x
        y.backward()
        print(x.grad)
        y = x + x
        y.backward()
        print(x.grad)
        x.cleargrad()
        y = x + x + x
        y.backward()
        print(x.grad)
    """),
    Snippet("backward_from_non_scalar", """
        x = Variable(np.array([1.0, 2.0, 3.0]))
        y = x * x
        y.backward()
        print(y.grad, x.grad)
        x.cleargrad()
        y = x * x
        y.grad = Variable(np.array([1.0, 10.0, 100.0]))
        y.backward()
        print(x.grad)
    """),
    Snippet("retain_grad", """
        x0 = Variable(np.array(1.0))
        x1 = Variable(np.array(1.0))
        t = x0 + x1
        y = x0 + t
        y.backward()
        print(y.grad, t.grad, x0.grad, x1.grad)
        x0.cleargrad(); x1.cleargrad()
        t = x0 + x1
        y = x0 + t
        y.backward(retain_grad=True)
        print(y.grad, t.grad, x0.grad, x1.grad)
    """),
    Snippet("no_grad_and_using_config", """
        x = Variable(np.array(2.0))
        with dz.no_grad():
            y = x * 2
            print(dz.Config.enable_backprop, y.creator is None, y)
        y = x * 2
        print(dz.Config.enable_backprop, y.creator is None, y.generation)
        with dz.using_config('enable_backprop', False):
            print(dz.Config.enable_backprop)
            z = F.sin(x)
            print(z.creator is None)
        print(dz.Config.enable_backprop)
        with dz.test_mode():
            print(dz.Config.train)
        print(dz.Config.train)
        with dz.using_config('train', False):
            print(dz.Config.train)
        print(dz.Config.train)
    """),
    Snippet("custom_function_steps_and_setup_variable", """
        class Square(dz.Function):
            def forward(self, x):
                return x ** 2
            def backward(self, gy):
                x, = self.inputs
                return 2 * x * gy
        class SplitSum(dz.Function):
            def forward(self, a, b):
                return a + b, a * b
            def backward(self, g0, g1):
                a, b = self.inputs
                return g0 + g1 * b, g0 + g1 * a
        dz.setup_variable()
        x = Variable(np.array(3.0))
        y = Square()(x)
        y.backward()
        print(y, x.grad, y.creator.__class__.__name__, y.creator.generation, y.generation)
        a, b = Variable(np.array(2.0)), Variable(np.array(5.0))
        s, p = SplitSum()(a, b)
        (s * p).backward()
        print(s, p, a.grad, b.grad)
        f = Square()
        y = f(Variable(np.array([1.0, 2.0])))
        print(len(f.inputs), len(f.outputs), f.outputs[0]() is y, f.inputs[0].data)
        try:
            dz.Function()(Variable(np.array(1.0)))
        except NotImplementedError:
            print('NotImplementedError')
    """),
    Snippet("parameter_and_dot_methods", """
        W = dz.Parameter(np.array([[1.0, 2.0], [3.0, 4.0]]), name='W')
        x = Variable(np.array([[1.0, -1.0]]))
        y = x.dot(W)
        print(type(y).__name__, type(W * 2).__name__, type(W).__name__, W.name, y)
        y = x.matmaul(W) + x.dot(W)
        F.sum(y).backward()
        print(W.grad, x.grad)
        print(x.max(), x.min(), W.max(axis=0), W.min(axis=1, keepdims=True))
    """),
    Snippet("numerical_grad_passes_keywords_to_f", """
        def f(x, scale, eps=0.5):
            return F.sum(F.sin(x) * scale + eps * x)
        print(dz.utils.numerical_grad(f, np.array([0.5, 1.0]), 2.0, eps=3.0))
        print(dz.utils.gradient_check(f, np.array([0.5, 1.0]), 2.0, eps=3.0))
    """),
    Snippet("unchain_backward", """
        x = Variable(np.array(2.0))
        a = x * 3
        b = F.exp(a)
        y = b + 1
        y.unchain_backward()
        print(y.creator is not None, b.creator is None, a.creator is None)
        y.backward()
        print(b.grad, x.grad)
        z = Variable(np.array(1.0)) * 2
        z.unchain()
        print(z.creator)
    """),
    # --- steps 25-36: graph, Taylor/Newton, higher-order derivatives -----------------------------
    Snippet("goldstein_price_step24", """
        def goldstein(x, y):
            return (1 + (x + y + 1)**2 * (19 - 14*x + 3*x**2 - 14*y + 6*x*y + 3*y**2)) * \\
                   (30 + (2*x - 3*y)**2 * (18 - 32*x + 12*x**2 + 48*y - 36*x*y + 27*y**2))
        x = Variable(np.array(1.0))
        y = Variable(np.array(1.0))
        z = goldstein(x, y)
        z.backward()
        print(z, x.grad, y.grad)
    """),
    Snippet("rosenbrock_gradient_descent_step28", """
        def rosenbrock(x0, x1):
            return 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2
        x0 = Variable(np.array(0.0))
        x1 = Variable(np.array(2.0))
        for i in range(50):
            y = rosenbrock(x0, x1)
            x0.cleargrad(); x1.cleargrad()
            y.backward()
            x0.data -= 0.001 * x0.grad.data
            x1.data -= 0.001 * x1.grad.data
        print(x0, x1)
    """),
    Snippet("newton_method_step33", """
        def f(x):
            return x ** 4 - 2 * x ** 2
        x = Variable(np.array(2.0))
        for i in range(10):
            y = f(x)
            x.cleargrad()
            y.backward(create_graph=True)
            gx = x.grad
            x.cleargrad()
            gx.backward()
            gx2 = x.grad
            x.data -= gx.data / gx2.data
            print(i, x)
    """),
    Snippet("sin_higher_order_step34", """
        x = Variable(np.linspace(-7, 7, 5))
        y = F.sin(x)
        y.backward(create_graph=True)
        logs = [y.data]
        for i in range(3):
            logs.append(x.grad.data)
            gx = x.grad
            x.cleargrad()
            gx.backward(create_graph=True)
        for row in logs:
            print(row)
    """),
    Snippet("tanh_higher_order_step35", """
        x = Variable(np.array(1.0))
        y = F.tanh(x)
        x.name = 'x'; y.name = 'y'
        y.backward(create_graph=True)
        for i in range(5):
            gx = x.grad
            x.cleargrad()
            gx.backward(create_graph=True)
            print(i + 2, x.grad)
        gx = x.grad
        gx.name = 'gx' + str(6)
        print(len(dz.utils.get_dot_graph(gx).splitlines()) > 10)
    """),
    Snippet("double_backprop_step36", """
        x = Variable(np.array(2.0))
        y = x ** 2
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        z = gx ** 3 + y
        z.backward()
        print(z, x.grad)
    """),
    Snippet("elementwise_functions", """
        x = Variable(np.array([[0.5, -1.5, 2.0], [0.3, 1.2, -0.7]]))
        for name, f in [('sin', F.sin), ('cos', F.cos), ('tanh', F.tanh), ('exp', F.exp),
                        ('sigmoid', F.sigmoid), ('sigmoid_simple', F.sigmoid_simple),
                        ('relu', F.relu), ('leaky_relu', lambda v: F.leaky_relu(v, 0.1)),
                        ('neg', lambda v: -v), ('pow', lambda v: F.pow(v, 3)),
                        ('clip', lambda v: F.clip(v, -1.0, 1.0))]:
            x.cleargrad()
            y = f(x)
            y.backward()
            print(name, y.data, x.grad.data)
        x.cleargrad()
        y = F.log(x * x + 1)
        y.backward()
        print('log', y.data, x.grad.data)
    """),
    Snippet("second_derivatives_of_functions", """
        x = Variable(np.array([0.5, -1.5, 2.0]))
        for name, f in [('sin', F.sin), ('cos', F.cos), ('tanh', F.tanh), ('exp', F.exp),
                        ('log', F.log), ('sigmoid', F.sigmoid), ('pow', lambda v: v ** 3),
                        ('div', lambda v: 1 / (v * v + 1))]:
            x.data = np.array([0.5, 1.5, 2.0])
            x.cleargrad()
            y = F.sum(f(x))
            y.backward(create_graph=True)
            gx = x.grad
            x.cleargrad()
            F.sum(gx).backward()
            print(name, gx.data, x.grad.data)
    """),
    # --- steps 37-43: tensors, broadcast, matmul, linear regression, MLP ------------------------
    Snippet("broadcast_add_mul_sub_div", """
        x0 = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        x1 = Variable(np.array([10.0, 20.0, 30.0]))
        for name, op in [('add', lambda a, b: a + b), ('sub', lambda a, b: a - b),
                         ('mul', lambda a, b: a * b), ('div', lambda a, b: a / b),
                         ('rsub', lambda a, b: b - a), ('rdiv', lambda a, b: b / a)]:
            x0.cleargrad(); x1.cleargrad()
            y = op(x0, x1)
            y.backward()
            print(name, y.data, x0.grad.data, x1.grad.data)
        x2 = Variable(np.array(10.0))
        y = x0 * x2
        y.backward()
        print(x2.grad, x2.grad.shape)
        x3 = Variable(np.array([[2.0], [3.0]]))
        x0.cleargrad()
        y = (x0 + x3) * x3
        y.backward()
        print(x0.grad, x3.grad, x3.grad.shape)
    """),
    Snippet("sum_reshape_transpose", """
        x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        for kw in [dict(), dict(axis=0), dict(axis=1), dict(axis=1, keepdims=True),
                   dict(keepdims=True), dict(axis=-1)]:
            x.cleargrad()
            y = F.sum(x, **kw)
            y.backward()
            print(kw, y.shape, y.data, x.grad.data)
        x.cleargrad()
        y = x.sum(axis=0)
        (y * Variable(np.array([1.0, 2.0, 3.0]))).backward()
        print(x.grad)
        x.cleargrad()
        y = F.reshape(x, (6,))
        y.backward(retain_grad=True)
        print(y.shape, x.grad.shape)
        y = x.reshape((3, 2)); print(y.shape)
        y = x.reshape(3, 2); print(y.shape)
        x.cleargrad()
        y = F.transpose(x)
        (y * Variable(np.arange(6.0).reshape(3, 2))).backward()
        print(y.shape, x.grad)
        print(x.T.shape, x.transpose().shape, x.transpose(1, 0).shape, x.transpose((1, 0)).shape)
        z = Variable(np.arange(24.0).reshape(2, 3, 4))
        w = F.transpose(z, (1, 0, 2))
        (w * Variable(np.arange(24.0).reshape(3, 2, 4))).backward()
        print(w.shape, z.grad.data.ravel())
        print(F.reshape(x, (2, 3)) is x)
    """),
    Snippet("broadcast_to_sum_to_expand_flatten", """
        x = Variable(np.array([1.0, 2.0, 3.0]))
        y = F.broadcast_to(x, (2, 3))
        (y * Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))).backward()
        print(y, x.grad)
        x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        y = F.sum_to(x, (1, 3))
        y.backward()
        print(y, x.grad)
        y = F.sum_to(x, (2, 1))
        print(y)
        print(F.expand_dims(x, 0).shape, F.expand_dims(x, 1).shape)
        z = Variable(np.arange(24.0).reshape(2, 3, 4))
        print(F.flatten(z).shape)
        print(dz.utils.sum_to(np.ones((2, 3, 4)), (3, 1)))
        print(dz.utils.sum_to(np.ones((2, 3)), (2, 3)).shape)
    """),
    Snippet("get_item", """
        x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        y = F.get_item(x, 1)
        y.backward()
        print(y, x.grad)
        x.cleargrad()
        indices = np.array([0, 0, 1])
        y = x[indices]
        y.backward()
        print(y, x.grad)
        x.cleargrad()
        y = x[:, 1:]
        (y * Variable(np.array([[1.0, 2.0], [3.0, 4.0]]))).backward()
        print(y, x.grad)
        x.cleargrad()
        y = x[np.arange(2), np.array([2, 0])]
        y.backward(create_graph=True)
        print(y, x.grad)
    """),
    Snippet("matmul_and_linear", """
        x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        W = Variable(np.arange(12.0).reshape(3, 4) / 10)
        b = Variable(np.array([0.1, -0.2, 0.3, -0.4]))
        y = F.matmul(x, W)
        y.backward()
        print(y.shape, y.data, x.grad.data, W.grad.data)
        for p in (x, W, b):
            p.cleargrad()
        y = F.linear(x, W, b)
        (y * y).backward()
        print(y.data, x.grad.data, W.grad.data, b.grad.data)
        for p in (x, W, b):
            p.cleargrad()
        y = F.linear_simple(x, W, b)
        (y * y).backward()
        print(y.data, x.grad.data, W.grad.data, b.grad.data)
        for p in (x, W, b):
            p.cleargrad()
        y = F.linear(x, W)
        F.sum(y).backward()
        print(y.data, x.grad.data, W.grad.data)
        print(F.matmul(np.ones((2, 3)), W).shape)
    """),
    Snippet("linear_regression_step42", """
        np.random.seed(0)
        x = np.random.rand(100, 1)
        y = 5 + 2 * x + np.random.rand(100, 1)
        x, y = Variable(x), Variable(y)
        W = Variable(np.zeros((1, 1)))
        b = Variable(np.zeros(1))
        def predict(x):
            return F.matmul(x, W) + b
        lr = 0.1
        for i in range(100):
            y_pred = predict(x)
            loss = F.mean_squared_error(y, y_pred)
            W.cleargrad(); b.cleargrad()
            loss.backward()
            W.data -= lr * W.grad.data
            b.data -= lr * b.grad.data
            if i % 25 == 0:
                print(i, W.data, b.data, loss.data)
        print(W, b, loss)
        print(F.mean_squared_error_simple(y, predict(x)))
    """),
    Snippet("mlp_with_parameters_step43", """
        np.random.seed(0)
        x = np.random.rand(100, 1)
        y = np.sin(2 * np.pi * x) + np.random.rand(100, 1)
        I, H, O = 1, 10, 1
        W1 = dz.Parameter(0.01 * np.random.randn(I, H))
        b1 = dz.Parameter(np.zeros(H))
        W2 = dz.Parameter(0.01 * np.random.randn(H, O))
        b2 = dz.Parameter(np.zeros(O))
        def predict(x):
            y = F.linear(x, W1, b1)
            y = F.sigmoid(y)
            y = F.linear(y, W2, b2)
            return y
        lr = 0.2
        for i in range(300):
            y_pred = predict(x)
            loss = F.mean_squared_error(y, y_pred)
            for p in (W1, b1, W2, b2):
                p.cleargrad()
            loss.backward()
            for p in (W1, b1, W2, b2):
                p.data -= lr * p.grad.data
            if i % 100 == 0:
                print(i, loss)
        print(loss, W1.data.ravel()[:3], b2.data)
    """),
    # --- steps 46-52: softmax, cross entropy, accuracy, dropout -------------------------------
    Snippet("softmax_and_log_softmax", """
        x = Variable(np.array([[0.2, -0.4, 1.5, 0.3], [1.0, 2.0, 3.0, 4.0]]))
        w = Variable(np.array([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 2.0, 0.0]]))
        for name, f in [('softmax', F.softmax), ('softmax_simple', F.softmax_simple),
                        ('log_softmax', F.log_softmax),
                        ('softmax_axis0', lambda v: F.softmax(v, axis=0))]:
            x.cleargrad()
            y = f(x)
            F.sum(y * w).backward()
            print(name, y.data, x.grad.data)
    """),
    Snippet("softmax_cross_entropy", """
        x = Variable(np.array([[0.2, -0.4, 1.5, 0.3], [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]))
        t = np.array([2, 0, 3])
        loss = F.softmax_cross_entropy(x, t)
        loss.backward()
        print(loss, x.grad)
        x.cleargrad()
        loss = F.softmax_cross_entropy_simple(x, t)
        loss.backward()
        print(loss, x.grad)
        x.cleargrad()
        loss = F.softmax_cross_entropy(x, t)
        loss.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        F.sum(gx * gx).backward()
        print(gx.data, x.grad.data)
    """),
    Snippet("sigmoid_and_binary_cross_entropy", """
        x = Variable(np.array([[0.5], [-1.0], [2.0], [0.1]]))
        t = np.array([1, 0, 1, 0])
        loss = F.sigmoid_cross_entropy(x, t)
        loss.backward()
        print(loss, x.grad)
        x.cleargrad()
        loss = F.sigmoid_cross_entropy(x, t.reshape(4, 1))
        loss.backward()
        print(loss, x.grad)
        x.cleargrad()
        p = F.sigmoid(x)
        loss = F.binary_cross_entropy(p, t)
        loss.backward()
        print(loss, x.grad)
    """),
    Snippet("binary_cross_entropy_clips_like_dezero", """
        p = Variable(np.array([0.9999, 0.5, 1e-20]))
        t = np.array([1, 1, 0])
        loss = F.binary_cross_entropy(p, t)
        loss.backward()
        print(loss, p.grad)
    """),
    Snippet("mean_squared_error", """
        x0 = Variable(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]]))
        x1 = Variable(np.array([[1.5, 2.0], [2.0, 4.5], [5.0, 6.0]]))
        loss = F.mean_squared_error(x0, x1)
        loss.backward()
        print(loss, x0.grad, x1.grad)
        x0.cleargrad(); x1.cleargrad()
        loss = F.mean_squared_error_simple(x0, x1)
        loss.backward()
        print(loss, x0.grad, x1.grad)
    """),
    Snippet("accuracy", """
        y = np.array([[0.2, 0.8, 0.0], [0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
        t = np.array([1, 2, 0])
        acc = F.accuracy(y, t)
        print(acc, type(acc).__name__, acc.dtype)
        acc = F.accuracy(Variable(y), Variable(t))
        print(acc)
    """),
    # StuCrs keeps float32 in, float32 out for accuracy (DeZero returns float64): values only.
    Snippet("accuracy_float32_values_only", """
        y = np.array([[0.2, 0.8, 0.0], [0.1, 0.9, 0.0], [0.8, 0.1, 0.1]], dtype=np.float32)
        t = np.array([1, 2, 0])
        print(float(F.accuracy(y, t).data))
    """, rtol=1e-6, note="StuCrs returns float32 for float32 scores; DeZero float64"),
    Snippet("dropout_train_and_test", """
        x = Variable(np.ones(10))
        np.random.seed(0)
        y = F.dropout(x)
        print(y)
        np.random.seed(0)
        y = F.dropout(x, dropout_ratio=0.3)
        y.backward()
        print(y, x.grad)
        with dz.test_mode():
            y = F.dropout(x)
            print(y, dz.Config.train)
        with dz.using_config('train', False):
            y = F.dropout(x, 0.9)
            print(y)
    """),
    Snippet("max_min_clip", """
        x = Variable(np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]]))
        for name, f in [('max', lambda v: F.max(v)), ('max0', lambda v: F.max(v, axis=0)),
                        ('max1k', lambda v: F.max(v, axis=1, keepdims=True)),
                        ('min', lambda v: F.min(v)), ('min1', lambda v: F.min(v, axis=1)),
                        ('method_max', lambda v: v.max(axis=1)), ('method_min', lambda v: v.min()),
                        ('clip', lambda v: F.clip(v, 2.0, 4.5))]:
            x.cleargrad()
            y = f(x)
            y.backward()
            print(name, y.data, x.grad.data)
    """),
    Snippet("float32_stays_float32", """
        x = Variable(np.array([1.0, 2.0, 3.0], dtype=np.float32))
        y = F.sin(x * 2.0 + 1) / 3 - x ** 2
        y.backward()
        print(y.dtype, x.grad.dtype, y.data, x.grad.data)
        W = Variable(np.ones((3, 2), dtype=np.float32))
        z = F.sigmoid(F.matmul(x.reshape(1, 3), W))
        print(z.dtype, z.data)
    """, rtol=1e-6),
    Snippet("float32_with_scalar_and_0d_operands", """
        # NumPy 1 (DeZero's) value-based casting keeps float32 for Python/NumPy scalars and 0-d
        # arrays; StuCrs casts those operands to the Variable's dtype so NumPy 2 gives the same.
        x = Variable(np.array([1.0, 2.0], dtype=np.float32))
        for y in (x * np.array(2.0), x + np.float64(0.5), 2 - x, np.array(3.0) / x, x ** 2,
                  x * np.array(2), x - 1):
            print(y.dtype, y.data)
        y = x * np.array(2.0) + np.array(1.0)
        y.backward()
        print(x.grad.dtype, x.grad.data)
    """),
    # DeZero turns the gradient of a float32 softmax_cross_entropy and the float32 sigmoid cross
    # entropy into float64 (integer labels promote); StuCrs keeps float32 (deliberate), so only the
    # values are printed here.
    Snippet("float32_losses_values_only", """
        x = Variable(np.array([[0.1, 0.2, -0.3], [0.3, 0.1, 0.9]], dtype=np.float32))
        t = np.array([0, 2])
        loss = F.softmax_cross_entropy(x, t)
        loss.backward()
        print(loss.dtype, loss.data, x.grad.data)
        x.cleargrad()
        loss = F.sigmoid_cross_entropy(x[:, 0], np.array([1, 0]))
        loss.backward()
        print(loss.data, x.grad.data)
    """, rtol=1e-6, atol=1e-7, note="StuCrs keeps float32 gradients for float32 inputs"),
    # --- utils -------------------------------------------------------------------------------
    Snippet("utils_helpers", """
        U = dz.utils
        x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        print(U.logsumexp(x, axis=1), U.logsumexp(x, axis=0))
        print(U.max_backward_shape(x, None), U.max_backward_shape(x, 1), U.max_backward_shape(x, 0))
        print(U.reshape_sum_backward(Variable(np.ones(3)), (2, 3), 0, False).shape)
        print(U.reshape_sum_backward(Variable(np.ones(2)), (2, 3), 1, False).shape)
        print(U.reshape_sum_backward(Variable(np.array(1.0)), (2, 3), None, False).shape)
        print(U.get_conv_outsize(28, 3, 1, 1), U.get_conv_outsize(28, 5, 2, 0),
              U.get_deconv_outsize(4, 3, 2, 1), U.pair(3), U.pair((2, 5)))
        print(U.array_equal(Variable(x), x), U.array_allclose(x, x + 1e-9), U.array_allclose(x, x + 1))
        g = U.numerical_grad(lambda v: F.sin(v) * 2, np.array([0.5, 1.0]))
        print(g)
        print(U.gradient_check(F.sin, np.array([0.5, 1.0, -2.0])))
        print(U.gradient_check(lambda v: F.sum(F.tanh(v) * v), np.array([[0.5, 1.0], [0.2, -1.0]])))
        print(U.gradient_check(lambda v, w: F.matmul(v, w), np.ones((2, 3)), np.ones((3, 2))))
    """),
    Snippet("get_dot_graph", """
        import re
        x0 = Variable(np.array(1.0), name='x0')
        x1 = Variable(np.array([1.0, 2.0]), name='x1')
        y = F.sin(x0 * x1) + x1
        y.name = 'y'
        txt = dz.utils.get_dot_graph(y, verbose=True)
        txt = re.sub(r'\\d{5,}', 'ID', txt)
        print(sorted(txt.splitlines()))
        txt = re.sub(r'\\d{5,}', 'ID', dz.utils.get_dot_graph(y, verbose=False))
        print(sorted(txt.splitlines()))
    """),
    Snippet("cuda_helpers_on_cpu", """
        x = np.array([1.0, 2.0])
        print(dz.cuda.get_array_module(x).__name__, dz.cuda.get_array_module(Variable(x)).__name__)
        print(type(dz.cuda.as_numpy(x)).__name__, dz.cuda.as_numpy(Variable(x)), dz.cuda.as_numpy(3.0))
        v = Variable(x)
        v.to_cpu()
        print(type(v.data).__name__)
    """),
    # --- layers / models / optimizers (steps 44-46, 53, 59-60) --------------------------------
    Snippet("layer_linear_fixed_weights", """
        layer = L.Linear(3)
        layer.W.data = np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]])
        layer.b.data = np.array([0.01, 0.02, 0.03])
        x = np.array([[1.0, 2.0], [3.0, -1.0]])
        y = layer(x)
        loss = F.sum(y * y)
        layer.cleargrads()
        loss.backward()
        print(y, layer.W.grad, layer.b.grad)
        print(len(list(layer.params())), layer.W.name, layer.b.name, layer.in_size, layer.out_size)
        layer2 = L.Linear(2, nobias=True, in_size=3)
        print(layer2.b, layer2.W.shape, layer2.W.dtype)
    """, requires=("layers",)),
    Snippet("layer_linear_seeded_init", """
        np.random.seed(0)
        layer = L.Linear(3)
        x = np.ones((2, 4), dtype=np.float32)
        y = layer(x)
        print(layer.W.shape, layer.W.dtype, layer.W.data, y.dtype, y.data, layer.in_size)
        np.random.seed(1)
        layer = L.Linear(2, in_size=3)
        print(layer.W.data)
    """, requires=("layers",)),
    Snippet("layer_composition_and_cleargrads", """
        class TwoLayer(dz.Layer):
            def __init__(self):
                super().__init__()
                self.l1 = L.Linear(3, in_size=2)
                self.l2 = L.Linear(1, in_size=3)
                self.p = dz.Parameter(np.array(1.0), name='p')
                self.not_a_param = np.ones(2)
            def forward(self, x):
                return self.l2(F.sigmoid(self.l1(x))) * self.p
        np.random.seed(0)
        m = TwoLayer()
        y = m(np.array([[0.5, -0.5]]))
        y.backward()
        print(y, len(list(m.params())), sorted(p.name for p in m.params()))
        print(sorted(float(p.grad.data.sum()) for p in m.params()))
        m.cleargrads()
        print(all(p.grad is None for p in m.params()))
    """, requires=("layers",)),
    Snippet("model_mlp_seeded", """
        np.random.seed(0)
        x = np.random.rand(5, 2)
        t = np.array([0, 1, 2, 1, 0])
        model = M.MLP((10, 3))
        y = model(x)
        loss = F.softmax_cross_entropy(y, t)
        model.cleargrads()
        loss.backward()
        print(loss, y.data)
        for i, l in enumerate(model.layers):
            print(i, l.W.shape, l.W.data.ravel()[:4], l.W.grad.data.ravel()[:4], l.b.grad.data[:3])
        print(model.l0 is model.layers[0], len(list(model.params())))
        model2 = M.MLP((4, 4, 1), activation=F.relu)
        print(model2(np.ones((2, 3))).shape)
    """, requires=_NN),
    Snippet("model_sequential", """
        np.random.seed(0)
        model = M.Sequential(L.Linear(4), L.Linear(2))
        y = model(np.ones((3, 5)))
        F.sum(y).backward()
        print(y.data, len(list(model.params())), model.l0 is model.layers[0])
        print([l.W.grad.shape for l in model.layers])
    """, requires=_NN),
    Snippet("model_save_load_weights", """
        np.random.seed(0)
        model = M.MLP((3, 2))
        x = np.ones((1, 4))
        y0 = model(x)
        model.save_weights('w.npz')
        for p in model.params():
            p.data = p.data * 0
        print(model(x))
        model.load_weights('w.npz')
        print(model(x), y0)
    """, requires=_NN),
    Snippet("sgd_training_step45", """
        np.random.seed(0)
        x = np.random.rand(100, 1)
        y = np.sin(2 * np.pi * x) + np.random.rand(100, 1)
        model = M.MLP((10, 1))
        optimizer = O.SGD(lr=0.2)
        print(optimizer.setup(model) is optimizer)
        for i in range(100):
            y_pred = model(x)
            loss = F.mean_squared_error(y, y_pred)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            if i % 25 == 0:
                print(i, loss)
        print(loss, model.l1.W.data.ravel()[:3])
    """, requires=_NN),
] + [
    Snippet(f"optimizer_{name}", f"""
        model = M.Model()
        model.W = dz.Parameter(np.array([[1.0, -2.0], [0.5, 3.0]]), name='W')
        model.b = dz.Parameter(np.array([0.1, -0.1]), name='b')
        x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, 0.3]])
        t = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
        optimizer = {ctor}.setup(model)
        for i in range(5):
            y = F.linear(x, model.W, model.b)
            loss = F.mean_squared_error(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            print(i, loss, model.W.data, model.b.data)
    """, requires=_NN)
    for name, ctor in [
        ("SGD", "O.SGD(lr=0.1)"),
        ("MomentumSGD", "O.MomentumSGD(lr=0.05, momentum=0.8)"),
        ("AdaGrad", "O.AdaGrad(lr=0.1)"),
        ("AdaDelta", "O.AdaDelta()"),
        # StuCrs adds eps to the bias-corrected sqrt(v_hat) as in the Adam paper and PyTorch;
        # DeZero 0.0.13 adds it to sqrt(v) (deliberate difference, see stucrs/optimizers.py).
        # With a negligible eps the two agree, so the rest of the update rule is compared.
        ("Adam", "O.Adam(alpha=0.05, eps=1e-14)"),
    ]
] + [
    Snippet("optimizer_hooks", """
        def make():
            model = M.Model()
            model.W = dz.Parameter(np.array([[1.0, -2.0], [0.5, 3.0]]), name='W')
            model.b = dz.Parameter(np.array([0.1, -0.1]), name='b')
            return model
        x = np.array([[1.0, 2.0], [-1.0, 0.5]])
        # (FreezeParam is left out: in DeZero 0.0.13 it sets grad to None after `update` has
        # collected the parameters, so the next update_one fails on grad.data.)
        for hook in ('WeightDecay', 'ClipGrad'):
            model = make()
            optimizer = O.SGD(lr=0.1).setup(model)
            if hook == 'WeightDecay':
                optimizer.add_hook(O.WeightDecay(0.5))
            else:
                optimizer.add_hook(O.ClipGrad(1.0))
            for i in range(3):
                loss = F.sum(F.linear(x, model.W, model.b) ** 2)
                model.cleargrads()
                loss.backward()
                optimizer.update()
            print(hook, model.W.data, model.b.data)
    """, requires=_NN),
    Snippet("adam_lr_property", """
        opt = O.Adam()
        opt.t = 3
        print(opt.lr, opt.alpha, opt.beta1, opt.beta2, opt.eps)
    """, requires=("optimizers",)),
    Snippet("rnn_seeded", """
        np.random.seed(0)
        rnn = L.RNN(3)  # DeZero 0.0.13 gives h2h in_size=in_size, so only a lazy in_size works
        x = np.array([[0.5, -0.3]])
        h1 = rnn(x)
        h2 = rnn(x)
        F.sum(h2).backward()
        print(h1.data, h2.data, rnn.x2h.W.grad.data)
        rnn.reset_state()
        print(rnn.h)
    """, requires=("layers",), rtol=1e-5, note="float32 weights (the layers' default dtype)"),
    Snippet("lstm_seeded", """
        np.random.seed(0)
        lstm = L.LSTM(3, in_size=2)
        x = np.array([[0.5, -0.3]])
        h1 = lstm(x)
        h2 = lstm(x)
        F.sum(h2).backward()
        print(h1.data, h2.data, lstm.x2u.W.grad.data)
        lstm.reset_state()
        print(lstm.h, lstm.c)
    """, requires=("layers",), rtol=1e-5, note="float32 weights (the layers' default dtype)"),
    Snippet("embed_id", """
        W = Variable(np.arange(12.0).reshape(4, 3))
        y = F.embed_id(np.array([1, 3, 1]), W)
        F.sum(y * y).backward()
        print(y, W.grad)
        np.random.seed(0)
        layer = L.EmbedID(4, 3)
        print(layer(np.array([0, 2])))
    """, requires=("layers",)),
    Snippet("batch_norm_function_and_layer", """
        x = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, -1.0]])
        gamma = dz.Parameter(np.array([1.0, 2.0]))
        beta = dz.Parameter(np.array([0.0, 0.5]))
        mean, var = np.zeros(2), np.ones(2)
        xv = Variable(x)
        y = F.batch_nrom(xv, gamma, beta, mean, var)
        F.sum(y * Variable(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))).backward()
        print(y.data, xv.grad.data, gamma.grad.data, beta.grad.data, mean, var)
        with dz.test_mode():
            y = F.batch_nrom(x, gamma, beta, mean, var)
        print(y.data)
        bn = L.BatchNorm()
        y = bn(x)
        print(y.data, bn.avg_mean.data, bn.avg_var.data)
        with dz.test_mode():
            print(bn(x).data)
    """, requires=("layers",)),
    # --- CNN (steps 55-58) --------------------------------------------------------------------
    Snippet("conv2d_pooling_functions", """
        rng = np.random.RandomState(0)
        x = Variable(rng.randn(2, 3, 5, 5))
        W = Variable(rng.randn(4, 3, 3, 3))
        b = Variable(rng.randn(4))
        for name, f in [('conv2d', F.conv2d), ('conv2d_simple', F.conv2d_simple)]:
            for v in (x, W, b):
                v.cleargrad()
            y = f(x, W, b, stride=1, pad=1)
            F.sum(y * y).backward()
            print(name, y.shape, float(y.data.sum()), float(x.grad.data.sum()),
                  W.grad.data.ravel()[:3], b.grad.data)
        x.cleargrad()
        y = F.conv2d(x, W, None, stride=2, pad=0)
        F.sum(y).backward()
        print(y.shape, y.data.ravel()[:4], x.grad.data.ravel()[:4])
        for name, f in [('pooling', F.pooling), ('pooling_simple', F.pooling_simple),
                        ('average_pooling', F.average_pooling)]:
            x.cleargrad()
            y = f(x, 2, 2)
            F.sum(y * y).backward()
            print(name, y.shape, y.data.ravel()[:4], x.grad.data.ravel()[:6])
    """),
    Snippet("im2col_col2im_deconv", """
        rng = np.random.RandomState(1)
        x = Variable(rng.randn(1, 2, 4, 4))
        col = F.im2col(x, 3, stride=1, pad=1)
        F.sum(col * col).backward()
        print(col.shape, float(col.data.sum()), x.grad.data.ravel()[:5])
        col6 = F.im2col(x, (2, 2), stride=2, pad=0, to_matrix=False)
        print(col6.shape)
        img = F.col2im(col, (1, 2, 4, 4), 3, stride=1, pad=1)
        print(img.shape, img.data.ravel()[:5])
        W = Variable(rng.randn(2, 3, 3, 3))
        b = Variable(rng.randn(3))
        y = F.deconv2d(x, W, b, stride=2, pad=1)
        F.sum(y * y).backward()
        print(y.shape, float(y.data.sum()), W.grad.data.ravel()[:4], b.grad.data)
    """),
    Snippet("conv_layers_fixed_weights", """
        rng = np.random.RandomState(2)
        x = rng.randn(2, 1, 6, 6)
        conv = L.Conv2d(2, kernel_size=3, stride=1, pad=1)
        y = conv(x)
        conv.W.data = rng.randn(*conv.W.shape)
        conv.b.data = np.array([0.1, -0.1])
        y = conv(x)
        F.sum(y * y).backward()
        print(y.shape, conv.W.shape, conv.in_channels, float(y.data.sum()), conv.W.grad.data.ravel()[:4])
        np.random.seed(0)
        conv = L.Conv2d(3, 2, in_channels=1)
        print(conv.W.shape, conv.W.data.ravel()[:4])
        np.random.seed(0)
        deconv = L.Deconv2d(2, 3, stride=2, pad=1, in_channels=1)
        print(deconv.W.shape, deconv(x).shape)
    """, requires=("layers",), rtol=1e-5, note="float32 default weights"),
    # --- data (steps 47-50, 60) ------------------------------------------------------------
    Snippet("spiral_dataset", """
        x, t = DS.get_spiral(train=True)
        print(x.shape, t.shape, x.dtype, x[:3], t[:10], float(x.sum()))
        x, t = DS.get_spiral(train=False)
        print(x[:2], t[:10])
        ds = DS.Spiral(train=True)
        print(len(ds), ds[0], ds[299])
    """, requires=("datasets",),
        note="DeZero 0.0.13's get_spiral uses np.int (NumPy 1.23 only); labels are compared as numbers"),
    # MNIST from the offline copy (DeZero reads ~/.dezero, which _run points at the same files);
    # StuCrs stores labels as int64 where DeZero keeps uint8 (deliberate), so dtypes are not printed.
    Snippet("mnist_test_set", """
        ds = DS.MNIST(train=False)
        x, t = ds[0]
        print(len(ds), x.shape, x.dtype, float(x.sum()), int(t), ds.data.shape, ds.data.dtype)
        print([int(v) for v in ds.label[:20]], int(ds.label.sum()), float(ds.data[9999].sum()))
        raw = DS.MNIST(train=False, transform=None)
        print(raw[1][0].shape, raw[1][0].dtype, int(raw[1][0].sum()), DS.MNIST.labels()[3])
        loader = DL.DataLoader(ds, batch_size=100, shuffle=False)
        x, t = next(iter(loader))
        print(x.shape, x.dtype, float(x.sum()), int(t.sum()))
    """, requires=("datasets", "dataloaders"), needs_mnist=True),
    Snippet("dataset_transforms", """
        ds = DS.Spiral(transform=lambda x: x * 2, target_transform=lambda t: t + 10)
        print(ds[0])
        class Squares(DS.Dataset):
            def prepare(self):
                self.data = np.arange(10.0)
                self.label = np.arange(10) ** 2
        sq = Squares(train=False)
        print(len(sq), sq[3], sq.train)
        class NoLabel(DS.Dataset):
            def prepare(self):
                self.data = np.arange(4.0)
        print(NoLabel()[2])
    """, requires=("datasets",)),
    Snippet("sincurve_dataset", """
        np.random.seed(0)
        ds = DS.SinCurve(train=True)
        print(len(ds), ds[0], ds[1], ds.data.shape, ds.label.shape)
        test = DS.SinCurve(train=False)
        print(test[0], test[998])
    """, requires=("datasets",)),
    Snippet("dataloader", """
        ds = DS.Spiral(train=True)
        loader = DL.DataLoader(ds, batch_size=64, shuffle=False)
        for x, t in loader:
            print(x.shape, t.shape, float(x.sum()), int(t.sum()))
        print(loader.max_iter, loader.data_size, loader.iteration)
        np.random.seed(0)
        loader = DL.DataLoader(ds, batch_size=100)
        x, t = loader.next()
        print(x.shape, float(x.sum()), t[:10])
        n = sum(1 for _ in loader)
        print(n)
    """, requires=("datasets", "dataloaders")),
    Snippet("seq_dataloader", """
        ds = DS.SinCurve(train=False)
        loader = DL.SeqDataLoader(ds, batch_size=3)
        for i, (x, t) in enumerate(loader):
            if i < 2:
                print(x.ravel(), t.ravel())
        print(i + 1, loader.max_iter)
    """, requires=("datasets", "dataloaders")),
    Snippet("transforms", """
        a = np.arange(12.0).reshape(3, 2, 2)
        f = T.Compose([T.Normalize(mean=1.0, std=2.0), T.Flatten()])
        print(f(a))
        print(T.Normalize(mean=[1.0, 2.0, 3.0], std=[1.0, 2.0, 4.0])(a).ravel())
        print(T.AsType(np.float32)(a).dtype, T.ToFloat()(np.arange(3)).dtype)
        print(T.ToInt(np.int64)(np.array([1.7, -2.2])), T.Compose()(a).shape)
    """, requires=("transforms",)),
]
SNIPPETS_BY_NAME = {s.name: s for s in SNIPPETS}
assert len(SNIPPETS_BY_NAME) == len(SNIPPETS), "duplicate snippet names"


@pytest.fixture(scope="module")
def snippet_results(tmp_path_factory):
    snippets = [s for s in SNIPPETS if MNIST_DIR is not None or not s.needs_mnist]
    request = {"task": "snippets",
               "snippets": [{"name": s.name, "code": s.code, "requires": s.requires} for s in snippets]}
    dz = _run(DEZERO_PYTHON, "dezero", request, tmp_path_factory)["snippets"]
    st = _run(sys.executable, "stucrs", request, tmp_path_factory)["snippets"]
    return dz, st


_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?\b(?:nan|inf)\b")


def _parse(text):
    """(numbers, skeleton): the numbers printed, and the text around them without whitespace."""
    numbers = [float(m) for m in _NUMBER.findall(text)]
    skeleton = re.sub(r"\s+", "", _NUMBER.sub("#", text))
    return numbers, skeleton


def _compare(dz_out, st_out, rtol, atol):
    dz_nums, dz_skel = _parse(dz_out)
    st_nums, st_skel = _parse(st_out)
    problems = []
    if dz_skel != st_skel:
        problems.append(f"printed text differs:\n  DeZero: {dz_skel[:400]}\n  StuCrs: {st_skel[:400]}")
    if len(dz_nums) != len(st_nums):
        problems.append(f"{len(dz_nums)} numbers printed by DeZero, {len(st_nums)} by StuCrs")
    else:
        bad = [(i, a, b) for i, (a, b) in enumerate(zip(dz_nums, st_nums))
               if not (a == b or (math.isnan(a) and math.isnan(b))
                       or abs(a - b) <= atol + rtol * abs(a))]
        if bad:
            problems.append(f"{len(bad)} of {len(dz_nums)} numbers differ (index, DeZero, StuCrs): "
                            f"{bad[:8]}")
    return problems


@pytest.mark.parametrize("name", list(SNIPPETS_BY_NAME))
def test_behaviour_matches_dezero(snippet_results, name):
    snip = SNIPPETS_BY_NAME[name]
    if snip.needs_mnist and MNIST_DIR is None:
        pytest.skip(SKIP_REASON)
    dz, st = snippet_results
    d, s = dz[name], st[name]
    assert not d["missing"] and d["error"] is None, (
        f"snippet {name!r} fails on DeZero itself (fix the snippet): {d['error']}\n{d.get('traceback')}")
    if s["missing"]:
        # the nn / data modules are written by colleagues; skip only while a module does not exist
        pytest.skip(f"{', '.join(s['missing'])} does not exist yet")
    assert s["error"] is None, (
        f"StuCrs raised where DeZero did not: {s['error']}\n{s.get('traceback')}\n"
        f"--- DeZero printed ---\n{d['out']}")
    problems = _compare(d["out"], s["out"], snip.rtol, snip.atol)
    assert not problems, ("\n".join(problems) + f"\n--- DeZero printed ---\n{d['out']}"
                          f"--- StuCrs printed ---\n{s['out']}")
