#!/usr/bin/env python3
"""Build the pinned virtual environments of StuCrs under ``.venvs/NAME/``.

Usage::

    python3 envs/build.py NAME [NAME...] [--gpu|--cpu|--auto] [--force] [--python PATH]
    python3 envs/build.py --list
    python3 envs/build.py --print-python NAME

Standard library only: it runs with any ``python3`` (3.8+), and builds every environment with
Python 3.11 (``--python PATH``, else ``$STUCRS_PYTHON``, else ``python3.11`` on ``PATH``).

* ``envs/NAME.txt`` holds the exact pins of environment NAME; with ``--gpu`` the file
  ``envs/NAME-gpu.txt`` is used instead where it exists.  ``-e .`` means the repository root:
  pip always runs from there.
* ``envs/constraints/NAME.txt`` (or ``NAME-gpu.txt`` with ``--gpu``), where present, pins the
  transitive dependencies too (``pip -c``); ``--lock`` (re)writes it from the built environment.
* A line ``# verify-import: mod1 mod2`` in a requirements file makes the build import these
  modules with the new environment's Python; a build that fails this is thrown away.
* The build happens in ``.venvs/NAME.tmp-<pid>`` and is renamed into place only when it has
  passed, so a failed build leaves no half environment behind.
* ``.venvs/NAME/.stucrs-env-stamp`` (JSON) records the SHA-256 of every file used, the Python
  version, the pip version and the GPU flag; when it matches, nothing is rebuilt ("up to date").

The mode defaults to ``$STUCRS_ENV_MODE`` (``cpu``, ``gpu`` or ``auto``), else ``cpu``;
``auto`` picks the GPU files when ``nvidia-smi`` runs and lists a GPU.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

STAMP_NAME = ".stucrs-env-stamp"
STAMP_SCHEMA = 1
# pip used inside every environment (the one bundled with Python differs between builds of 3.11).
PIP_PIN = "pip==26.0.1"
PYTHON_MINOR = (3, 11)
DEFAULT_ROOT = Path(__file__).resolve().parent.parent
VERIFY_RE = re.compile(r"^#\s*verify-import:\s*(.*)$")
INCLUDE_RE = re.compile(r"^(-r|--requirement|-c|--constraint)\s*=?\s*(\S+)")
ON_WINDOWS = os.name == "nt"
# Run by the new environment's Python with the module names as arguments. A namespace package
# (no __file__) fails: it means a package directory was found without its code, e.g. an editable
# install made while stucrs/__init__.py was missing.
VERIFY_CODE = """import importlib, sys
for name in sys.argv[1:]:
    mod = importlib.import_module(name)
    if getattr(mod, "__file__", None) is None:
        sys.exit("verify-import: %s is an empty namespace package, not an installed module" % name)
print("imports ok: " + " ".join(sys.argv[1:]))
"""


class BuildError(Exception):
    """A build step failed; the message says what to do."""


def log(msg):
    print("[envs/build] " + msg, flush=True)


# --------------------------------------------------------------------------- paths and files


def bin_dir(venv):
    return Path(venv) / ("Scripts" if ON_WINDOWS else "bin")


def venv_python(venv):
    return bin_dir(venv) / ("python.exe" if ON_WINDOWS else "python")


def available_envs(root):
    envs_dir = Path(root) / "envs"
    names = sorted(p.stem for p in envs_dir.glob("*.txt") if not p.stem.endswith("-gpu"))
    return names


def requirements_file(root, name, gpu):
    envs_dir = Path(root) / "envs"
    if gpu and (envs_dir / (name + "-gpu.txt")).is_file():
        return envs_dir / (name + "-gpu.txt")
    path = envs_dir / (name + ".txt")
    if not path.is_file():
        known = ", ".join(available_envs(root)) or "none"
        raise BuildError("no requirements file %s (known environments: %s)" % (path, known))
    return path


def constraints_file(root, name, gpu):
    cdir = Path(root) / "envs" / "constraints"
    if gpu and (cdir / (name + "-gpu.txt")).is_file():
        return cdir / (name + "-gpu.txt")
    path = cdir / (name + ".txt")
    return path if path.is_file() else None


def included_files(path, seen=None):
    """The file itself plus every file it pulls in with -r/-c (recursively)."""
    seen = [] if seen is None else seen
    path = Path(path).resolve()
    if path in seen:
        return seen
    seen.append(path)
    for line in path.read_text(encoding="utf-8").splitlines():
        m = INCLUDE_RE.match(line.strip())
        if m:
            target = (path.parent / m.group(2)).resolve()
            if target.is_file():
                included_files(target, seen)
    return seen


def verify_modules(files):
    mods = []
    for f in files:
        for line in Path(f).read_text(encoding="utf-8").splitlines():
            m = VERIFY_RE.match(line.strip())
            if m:
                mods.extend(x for x in re.split(r"[\s,]+", m.group(1)) if x)
    return list(dict.fromkeys(mods))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- python and GPU


def find_python(explicit=None):
    """Absolute path of a Python 3.11 interpreter and its full version."""
    candidates = []
    if explicit:
        candidates.append(("--python", explicit))
    elif os.environ.get("STUCRS_PYTHON"):
        candidates.append(("$STUCRS_PYTHON", os.environ["STUCRS_PYTHON"]))
    else:
        found = shutil.which("python3.11")
        if found:
            candidates.append(("python3.11 on PATH", found))
    if not candidates:
        raise BuildError(
            "Python 3.11 not found: install python3.11 and put it on PATH, or set "
            "STUCRS_PYTHON=/path/to/python3.11 (or pass --python PATH)"
        )
    origin, exe = candidates[0]
    exe_path = shutil.which(exe) or exe
    code = "import sys, platform; print(sys.executable); print(platform.python_version())"
    try:
        out = subprocess.run([exe_path, "-c", code], check=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BuildError("cannot run the Python given by %s (%s): %s" % (origin, exe, exc))
    # the real file, not a symlink to it: a venv made from a link may not find its standard library
    real_exe, version = os.path.realpath(out[0].strip()), out[1].strip()
    if tuple(int(x) for x in version.split(".")[:2]) != PYTHON_MINOR:
        raise BuildError("%s (%s) is Python %s; StuCrs environments need Python %d.%d"
                         % (origin, exe, version, PYTHON_MINOR[0], PYTHON_MINOR[1]))
    return real_exe, version


def gpu_present():
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        res = subprocess.run([exe, "-L"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0 and "GPU" in res.stdout


def resolve_mode(mode):
    mode = mode or os.environ.get("STUCRS_ENV_MODE", "cpu") or "cpu"
    if mode not in ("cpu", "gpu", "auto"):
        raise BuildError("STUCRS_ENV_MODE must be cpu, gpu or auto, not %r" % mode)
    if mode == "auto":
        return gpu_present()
    return mode == "gpu"


# --------------------------------------------------------------------------- stamp


def wanted_stamp(root, name, gpu, py_version, use_constraints=True):
    req = requirements_file(root, name, gpu)
    files = included_files(req)
    cons = constraints_file(root, name, gpu) if use_constraints else None
    if cons is not None:
        files += [f for f in included_files(cons) if f not in files]
    root = Path(root).resolve()

    def rel(p):
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return str(p)

    return {
        "schema": STAMP_SCHEMA,
        "name": name,
        "requirements": rel(req),
        "constraints": rel(cons) if cons is not None else None,
        "sha256": {rel(f): sha256_file(f) for f in files},
        "python": py_version,
        "pip": PIP_PIN,
        "gpu": bool(gpu),
    }


def read_stamp(venv):
    try:
        with open(Path(venv) / STAMP_NAME, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def stamp_matches(venv, wanted, subset=False):
    """True when .venvs/NAME was built from exactly what `wanted` describes.

    With subset=True the files of `wanted` only need to be among those the stamp records
    (used by --lock, which may add a constraints file to an environment built without it).
    """
    have = read_stamp(venv)
    if not have or not venv_python(venv).exists():
        return False
    keys = ("schema", "python", "pip", "gpu") + (() if subset else ("sha256",))
    if not all(have.get(k) == wanted.get(k) for k in keys):
        return False
    if subset:
        recorded = have.get("sha256") or {}
        return all(recorded.get(f) == h for f, h in wanted["sha256"].items())
    return True


def write_stamp(venv, stamp):
    path = Path(venv) / STAMP_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(str(tmp), str(path))


# --------------------------------------------------------------------------- building


class _Lock:
    """Exclusive lock on .venvs/NAME.lock so that two builds of one env never overlap."""

    def __init__(self, path):
        self.path = Path(path)
        self.fh = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            import fcntl
        except ImportError:  # Windows: no lock, builds are rare there
            return self
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log("waiting for another build of %s to finish ..." % self.path.stem)
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.fh.close()


def run(cmd, cwd, env=None, show=None):
    log("$ " + (show or " ".join(str(c) for c in cmd)))
    res = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env)
    if res.returncode != 0:
        raise BuildError("command failed (exit %d): %s" % (res.returncode, " ".join(map(str, cmd))))


def relocate_scripts(tmp, final):
    """Rewrite the build path into the final path in bin/ (script shebangs, activate) and pyvenv.cfg."""
    old, new = str(tmp).encode(), str(final).encode()
    paths = [p for p in bin_dir(tmp).iterdir() if p.is_file() and not p.is_symlink()]
    paths.append(Path(tmp) / "pyvenv.cfg")
    for p in paths:
        try:
            data = p.read_bytes()
        except OSError:
            continue
        if old in data and b"\0" not in data[:8192]:
            mode = p.stat().st_mode
            p.write_bytes(data.replace(old, new))
            os.chmod(str(p), mode)


def base_pip_can_target(py_exe, env):
    """True when the base Python has a pip (>= 22.3) that can install into another interpreter."""
    try:
        out = subprocess.run([py_exe, "-m", "pip", "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, env=env, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    m = re.match(r"pip (\d+)\.(\d+)", out.stdout)
    return out.returncode == 0 and m is not None and (int(m.group(1)), int(m.group(2))) >= (22, 3)


def pip_env():
    env = dict(os.environ)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env.setdefault("PIP_NO_INPUT", "1")
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def freeze_constraints(venv, root, name, gpu):
    out = subprocess.run([str(venv_python(venv)), "-m", "pip", "freeze", "--exclude-editable"],
                         check=True, stdout=subprocess.PIPE, universal_newlines=True,
                         env=pip_env()).stdout
    lines = []
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "==" not in line or " @ " in line:
            continue
        # "torch==2.13.0+cpu" -> "torch==2.13.0": the local label names a build, not a version
        lines.append(re.sub(r"\+[A-Za-z0-9.]+$", "", line))
    cdir = Path(root) / "envs" / "constraints"
    cdir.mkdir(parents=True, exist_ok=True)
    path = cdir / (name + ("-gpu" if gpu else "") + ".txt")
    header = ("# Generated by `python3 envs/build.py %s%s --lock`: every package of the built env,\n"
              "# used as pip constraints (-c) so that transitive dependencies are pinned too.\n"
              % (name, " --gpu" if gpu else ""))
    path.write_text(header + "\n".join(sorted(lines, key=str.lower)) + "\n", encoding="utf-8")
    log("wrote %s (%d pins)" % (path, len(lines)))


def build_env(name, root=DEFAULT_ROOT, gpu=False, force=False, python=None, lock=False):
    """Build .venvs/NAME unless its stamp matches. Returns 'up to date' or 'built'."""
    root = Path(root).resolve()
    venvs = root / ".venvs"
    final = venvs / name
    py_exe, py_version = find_python(python)
    with _Lock(venvs / (name + ".lock")):
        wanted = wanted_stamp(root, name, gpu, py_version, use_constraints=not lock)
        if not force and stamp_matches(final, wanted, subset=lock):
            if lock:
                freeze_constraints(final, root, name, gpu)
                write_stamp(final, wanted_stamp(root, name, gpu, py_version))
            log("%s: up to date (%s)" % (name, final))
            return "up to date"
        # leftovers of an interrupted build of NAME (none can be running: we hold the lock)
        for stale in list(venvs.glob(name + ".tmp-*")) + list(venvs.glob(name + ".old-*")):
            shutil.rmtree(str(stale), ignore_errors=True)
        tmp = venvs / ("%s.tmp-%d" % (name, os.getpid()))
        log("%s: building with Python %s (%s) from %s%s"
            % (name, py_version, py_exe, wanted["requirements"], " [GPU]" if gpu else ""))
        try:
            py = venv_python(tmp)
            env = pip_env()
            if base_pip_can_target(py_exe, env):
                # fast path: no ensurepip; the base Python's pip installs the pinned pip into the venv
                run([py_exe, "-m", "venv", "--without-pip", "--prompt", name, tmp], cwd=root)
                run([py_exe, "-m", "pip", "--python", py, "install", "--quiet", PIP_PIN], cwd=root, env=env)
            else:
                run([py_exe, "-m", "venv", "--prompt", name, tmp], cwd=root)
                run([py, "-m", "pip", "install", "--quiet", PIP_PIN], cwd=root, env=env)
            cmd = [py, "-m", "pip", "install", "-r", root / wanted["requirements"]]
            if wanted["constraints"]:
                cmd += ["-c", root / wanted["constraints"]]
            run(cmd, cwd=root, env=env)
            mods = verify_modules(included_files(root / wanted["requirements"]))
            if mods:
                run([py, "-c", VERIFY_CODE] + mods, cwd=tmp, env=env, show="verify-import: " + " ".join(mods))
            relocate_scripts(tmp, final)
            write_stamp(tmp, wanted)
            old = None
            if final.exists() or final.is_symlink():
                old = venvs / ("%s.old-%d" % (name, os.getpid()))
                os.replace(str(final), str(old))
            os.replace(str(tmp), str(final))
            if old is not None:
                shutil.rmtree(str(old), ignore_errors=True)
        except BaseException:
            shutil.rmtree(str(tmp), ignore_errors=True)
            raise
        if lock:
            freeze_constraints(final, root, name, gpu)
            write_stamp(final, wanted_stamp(root, name, gpu, py_version))
        log("%s: built (%s)" % (name, final))
        return "built"


# --------------------------------------------------------------------------- CLI


def list_envs(root, python):
    try:
        _, py_version = find_python(python)
    except BuildError:
        py_version = None
    for name in available_envs(root):
        venv = Path(root) / ".venvs" / name
        stamp = read_stamp(venv)
        gpu_file = (Path(root) / "envs" / (name + "-gpu.txt")).is_file()
        if stamp is None:
            state = "not built"
        else:
            want = wanted_stamp(root, name, stamp.get("gpu", False), py_version or stamp.get("python"))
            state = "up to date" if stamp_matches(venv, want) else "stale"
            state += " (gpu)" if stamp.get("gpu") else " (cpu)"
        print("%-12s %-18s %s%s" % (name, state, "envs/%s.txt" % name,
                                    " + envs/%s-gpu.txt" % name if gpu_file else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="envs/build.py", description="Build the pinned StuCrs environments in .venvs/NAME/.")
    ap.add_argument("names", nargs="*", metavar="NAME", help="environment(s) to build (envs/NAME.txt)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--gpu", dest="mode", action="store_const", const="gpu",
                      help="use envs/NAME-gpu.txt where it exists")
    mode.add_argument("--cpu", dest="mode", action="store_const", const="cpu", help="CPU files (default)")
    mode.add_argument("--auto", dest="mode", action="store_const", const="auto",
                      help="GPU files when nvidia-smi lists a GPU")
    ap.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    ap.add_argument("--python", metavar="PATH", help="Python 3.11 to build with (default: "
                    "$STUCRS_PYTHON, else python3.11 on PATH)")
    ap.add_argument("--lock", action="store_true",
                    help="rebuild without constraints and write envs/constraints/NAME[-gpu].txt")
    ap.add_argument("--list", action="store_true", help="list the environments and their state")
    ap.add_argument("--print-python", metavar="NAME", help="print the Python of .venvs/NAME")
    ap.add_argument("--root", default=str(DEFAULT_ROOT), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    root = Path(args.root).resolve()
    try:
        if args.list:
            list_envs(root, args.python)
            return 0
        if args.print_python:
            py = venv_python(root / ".venvs" / args.print_python)
            if not py.exists():
                print("environment %r is not built: run python3 envs/build.py %s"
                      % (args.print_python, args.print_python), file=sys.stderr)
                return 1
            print(py)
            return 0
        if not args.names:
            ap.error("give at least one NAME (see --list)")
        gpu = resolve_mode(args.mode)
        for name in args.names:
            build_env(name, root=root, gpu=gpu, force=args.force, python=args.python, lock=args.lock)
    except BuildError as exc:
        print("envs/build.py: error: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
