#!/usr/bin/env python3
"""Build the locked virtual environments of StuCrs under ``.venvs/NAME/`` with uv.

Usage::

    python3 envs/build.py NAME [NAME...] [--gpu|--cpu|--auto] [--force] [--python PATH]
    python3 envs/build.py --lock NAME [NAME...] [--gpu]     # re-lock after editing envs/NAME.in
    python3 envs/build.py --list
    python3 envs/build.py --print-python NAME

Standard library only (any ``python3``); every environment uses Python 3.11 (``--python PATH``,
else ``$STUCRS_PYTHON``, else ``python3.11`` on ``PATH``). uv does the resolving and installing:

* ``envs/NAME.in`` declares an environment (exact pins of the packages it needs); ``NAME-gpu.in``
  is the GPU/container variant where one exists. Directives in comments: ``# editable: .`` (install
  the checkout's stucrs editable), ``# verify-import: mod ...`` (imported after the build),
  ``# cpu-index: URL`` (a package index used when pip's configuration names no source).
* ``envs/locks/NAME.txt`` is its lock: every package, pinned, with SHA-256 hashes
  (``uv pip compile --generate-hashes`` for Linux x86_64, Python 3.11). Its header records the hash
  of the ``.in`` files it was made from (a lock that does not match is an error naming the re-lock
  command) and the size of the wheels it installs (printed before a build as the download size).
* A build installs the lock with ``uv pip sync --require-hashes`` into ``.venvs/NAME.tmp-<pid>``,
  checks the imports, and renames it into place, so a failed build leaves nothing behind.
  ``.venvs/NAME/.stucrs-env-stamp`` records the lock's hash: when it matches, nothing is rebuilt.
* Package sources: uv reads no pip configuration, so the ``find-links`` and index URLs of this
  machine's pip configuration (``pip config list``) are passed to uv at build time (none is written
  into the repository). uv's own output goes to ``.venvs/logs/NAME.log``.
* uv itself comes from PyPI, hash-locked in ``envs/locks/uv.txt``, into ``.venvs/.uv/``
  (``$STUCRS_UV`` may name another uv binary).

The mode defaults to ``$STUCRS_ENV_MODE`` (``cpu``, ``gpu`` or ``auto``), else ``cpu``;
``auto`` picks the GPU variants when ``nvidia-smi`` lists a GPU.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

STAMP_NAME = ".stucrs-env-stamp"
STAMP_SCHEMA = 2
PYTHON_MINOR = (3, 11)
UV_VERSION = "0.13.9"
LOCK_PLATFORM = "x86_64-unknown-linux-gnu"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent
DIRECTIVE_RE = re.compile(r"^#\s*(editable|verify-import|cpu-index):\s*(.*)$")
INCLUDE_RE = re.compile(r"^(-r|--requirement)\s*=?\s*(\S+)")
INPUTS_RE = re.compile(r"^# inputs-sha256: ([0-9a-f]{64})$", re.M)
DOWNLOAD_RE = re.compile(r"^# download-mb: (\d+)", re.M)
ON_WINDOWS = os.name == "nt"
# Run by the new environment's Python with the module names as arguments. A namespace package
# (no __file__) fails: a package directory was found without its code.
VERIFY_CODE = """import importlib, sys
for name in sys.argv[1:]:
    mod = importlib.import_module(name)
    if getattr(mod, "__file__", None) is None:
        sys.exit("verify-import: %s is an empty namespace package, not an installed module" % name)
"""


class BuildError(Exception):
    """A build step failed; the message says what to do."""


def log(msg):
    print("[envs] " + msg, flush=True)


# --------------------------------------------------------------------------- files


def bin_dir(venv):
    return Path(venv) / ("Scripts" if ON_WINDOWS else "bin")


def venv_python(venv):
    return bin_dir(venv) / ("python.exe" if ON_WINDOWS else "python")


def available_envs(root):
    return sorted(p.stem for p in (Path(root) / "envs").glob("*.in") if not p.stem.endswith("-gpu"))


def input_file(root, name, gpu):
    envs = Path(root) / "envs"
    if gpu and (envs / (name + "-gpu.in")).is_file():
        return envs / (name + "-gpu.in")
    path = envs / (name + ".in")
    if not path.is_file():
        raise BuildError("no environment %r: %s does not exist (known: %s)"
                         % (name, path, ", ".join(available_envs(root)) or "none"))
    return path


def lock_file(root, inp):
    return Path(root) / "envs" / "locks" / (Path(inp).stem + ".txt")


def included_files(path, seen=None):
    """The file itself plus every file it pulls in with -r (recursively)."""
    seen = [] if seen is None else seen
    path = Path(path).resolve()
    if path in seen:
        return seen
    seen.append(path)
    for line in path.read_text(encoding="utf-8").splitlines():
        m = INCLUDE_RE.match(line.strip())
        if m and (path.parent / m.group(2)).is_file():
            included_files(path.parent / m.group(2), seen)
    return seen


def directives(inp):
    """{'editable': bool, 'verify': [...], 'cpu_index': url or None}."""
    out = {"editable": False, "verify": [], "cpu_index": None}
    for f in included_files(inp):
        for line in f.read_text(encoding="utf-8").splitlines():
            m = DIRECTIVE_RE.match(line.strip())
            if not m:
                continue
            key, value = m.group(1), m.group(2).strip()
            if key == "editable":
                out["editable"] = True
            elif key == "verify-import":
                out["verify"] += [x for x in re.split(r"[\s,]+", value) if x]
            elif key == "cpu-index":
                out["cpu_index"] = out["cpu_index"] or value
    out["verify"] = list(dict.fromkeys(out["verify"]))
    return out


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def inputs_sha256(inp):
    """One hash over the .in file and the files it includes (their names and contents)."""
    h = hashlib.sha256()
    for f in included_files(inp):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def check_lock(root, inp):
    """The lock of `inp`, after checking that it was made from the current .in files."""
    lock = lock_file(root, inp)
    relock = "python3 envs/build.py --lock %s%s" % (
        inp.stem.replace("-gpu", ""), " --gpu" if inp.stem.endswith("-gpu") else "")
    if not lock.is_file():
        raise BuildError("%s has no lock (%s is missing): create it with `%s`"
                         % (rel(root, inp), rel(root, lock), relock))
    m = INPUTS_RE.search(lock.read_text(encoding="utf-8"))
    if not m or m.group(1) != inputs_sha256(inp):
        raise BuildError("%s does not match %s (the input was edited after locking): re-lock with `%s`"
                         % (rel(root, lock), rel(root, inp), relock))
    return lock


def download_mb(lock):
    m = DOWNLOAD_RE.search(Path(lock).read_text(encoding="utf-8"))
    return int(m.group(1)) if m else 0


def wheel_bytes(pylock_text):
    """Total size of the files a pylock.toml lists (one wheel per package for one platform).

    Files from a package index carry their size; a local file (find-links, file:// index) is
    measured on disk.
    """
    total = 0
    for block in pylock_text.split("[[packages]]")[1:]:
        line = (re.search(r"^wheels = \[\{[^\n]*", block, re.M) or re.search(r"^sdist = \{[^\n]*", block, re.M))
        if not line:
            continue
        size = re.search(r"\bsize = (\d+)", line.group(0))
        local = re.search(r'\b(?:url = "file://|path = ")([^"]+)"', line.group(0))
        if size:
            total += int(size.group(1))
        elif local and os.path.isfile(local.group(1)):
            total += os.path.getsize(local.group(1))
    return total


def rel(root, p):
    try:
        return Path(p).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------- python, uv, sources


def find_python(explicit=None):
    """Absolute path of a Python 3.11 interpreter and its full version."""
    if explicit:
        origin, exe = "--python", explicit
    elif os.environ.get("STUCRS_PYTHON"):
        origin, exe = "$STUCRS_PYTHON", os.environ["STUCRS_PYTHON"]
    else:
        origin, exe = "python3.11 on PATH", shutil.which("python3.11")
        if not exe:
            raise BuildError(
                "Python 3.11 not found: the environments need CPython 3.11 as `python3.11` on PATH. "
                "Install it (Debian/Ubuntu: `sudo apt-get install python3.11 python3.11-venv`, or "
                "pyenv: `pyenv install 3.11`), or set STUCRS_PYTHON=/path/to/python3.11")
    code = "import sys, platform; print(sys.executable); print(platform.python_version())"
    try:
        out = subprocess.run([shutil.which(exe) or exe, "-c", code], check=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BuildError("cannot run the Python given by %s (%s): %s" % (origin, exe, exc))
    real_exe, version = os.path.realpath(out[0].strip()), out[1].strip()
    if tuple(int(x) for x in version.split(".")[:2]) != PYTHON_MINOR:
        raise BuildError("%s (%s) is Python %s; StuCrs environments need Python %d.%d"
                         % (origin, exe, version, PYTHON_MINOR[0], PYTHON_MINOR[1]))
    return real_exe, version


def uv_env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    # the system's CA bundle (a TLS-intercepting proxy is trusted there, as pip trusts it)
    env.setdefault("UV_SYSTEM_CERTS", "1")
    env.setdefault("UV_NO_PROGRESS", "1")
    return env


def find_uv(root, py_exe, logfile):
    """A uv binary of UV_VERSION: $STUCRS_UV, else .venvs/.uv (installed from the hash lock)."""
    if os.environ.get("STUCRS_UV"):
        return os.environ["STUCRS_UV"]
    with _Lock(Path(root) / ".venvs" / ".uv.lock"):  # parallel builds install it once
        return _find_uv_locked(root, py_exe, logfile)


def _find_uv_locked(root, py_exe, logfile):
    tool = Path(root) / ".venvs" / ".uv"
    uv = bin_dir(tool) / ("uv.exe" if ON_WINDOWS else "uv")
    if uv.exists():
        out = subprocess.run([str(uv), "--version"], stdout=subprocess.PIPE, universal_newlines=True)
        if out.returncode == 0 and out.stdout.split()[1:2] == [UV_VERSION]:
            return str(uv)
    log("uv %s: installing from PyPI (envs/locks/uv.txt, hash-checked) into .venvs/.uv" % UV_VERSION)
    shutil.rmtree(str(tool), ignore_errors=True)
    run([py_exe, "-m", "venv", str(tool)], root, logfile)
    run([str(venv_python(tool)), "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
         "--require-hashes", "-r", str(Path(root) / "envs" / "locks" / "uv.txt")], root, logfile)
    return str(uv)


def pip_sources(py_exe):
    """find-links and index URLs from this machine's pip configuration, as uv arguments."""
    try:
        out = subprocess.run([py_exe, "-m", "pip", "config", "list"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    args = []
    values = {"find-links": [], "index-url": [], "extra-index-url": []}
    for line in out.splitlines():
        m = re.match(r"^[^.]*\.(find-links|index-url|extra-index-url)='(.*)'$", line.strip())
        if m:
            values[m.group(1)] += m.group(2).split()
    for key, flag in (("find-links", "--find-links"), ("index-url", "--index-url"),
                      ("extra-index-url", "--extra-index-url")):
        for v in dict.fromkeys(values[key]):
            args += [flag, v]
    if values["extra-index-url"] or values["index-url"]:
        args += ["--index-strategy", "unsafe-best-match"]
    return args


def sources_for(py_exe, info):
    args = pip_sources(py_exe)
    if not args and info["cpu_index"]:
        args = ["--extra-index-url", info["cpu_index"], "--index-strategy", "unsafe-best-match"]
    return args


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
    return gpu_present() if mode == "auto" else mode == "gpu"


# --------------------------------------------------------------------------- stamp


def wanted_stamp(root, name, gpu, py_version):
    inp = input_file(root, name, gpu)
    lock = check_lock(root, inp)
    return {
        "schema": STAMP_SCHEMA,
        "name": name,
        "input": rel(root, inp),
        "lock": rel(root, lock),
        "lock_sha256": sha256_bytes(lock.read_bytes()),
        "python": py_version,
        "uv": UV_VERSION,
        "gpu": bool(gpu),
        "editable": directives(inp)["editable"],
        # a copied or moved checkout rebuilds: the editable install points at its own stucrs
        "root": str(Path(root).resolve()),
    }


def read_stamp(venv):
    try:
        with open(Path(venv) / STAMP_NAME, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def stamp_matches(venv, wanted):
    have = read_stamp(venv)
    if not have or not venv_python(venv).exists():
        return False
    return all(have.get(k) == v for k, v in wanted.items())


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


def run(cmd, cwd, logfile, env=None):
    """Run a command with its output appended to `logfile`; a failure names the log."""
    cmd = [str(c) for c in cmd]
    with open(logfile, "a", encoding="utf-8") as fh:
        fh.write("\n$ " + " ".join(cmd) + "\n")
        fh.flush()
        res = subprocess.run(cmd, cwd=str(cwd), env=env or uv_env(), stdout=fh, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        tail = Path(logfile).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-6:]
        raise BuildError("command failed (exit %d): %s\n  last lines of %s:\n    %s"
                         % (res.returncode, " ".join(cmd), logfile, "\n    ".join(tail)))


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


def du_mb(path):
    total = 0
    for dirpath, _, files in os.walk(str(path)):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total / 1e6


def build_env(name, root=DEFAULT_ROOT, gpu=False, force=False, python=None):
    """Build .venvs/NAME unless its stamp matches. Returns 'up to date' or 'built'."""
    root = Path(root).resolve()
    venvs = root / ".venvs"
    final = venvs / name
    py_exe, py_version = find_python(python)
    with _Lock(venvs / (name + ".lock")):
        wanted = wanted_stamp(root, name, gpu, py_version)
        if not force and stamp_matches(final, wanted):
            log("%s: up to date" % name)
            return "up to date"
        for stale in list(venvs.glob(name + ".tmp-*")) + list(venvs.glob(name + ".old-*")):
            shutil.rmtree(str(stale), ignore_errors=True)
        inp = root / wanted["input"]
        info = directives(inp)
        logs = venvs / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        logfile = logs / (name + ".log")
        logfile.write_text("# envs/build.py %s (%s)\n" % (name, time.strftime("%Y-%m-%d %H:%M:%S")),
                           encoding="utf-8")
        uv = find_uv(root, py_exe, logfile)
        tmp = venvs / ("%s.tmp-%d" % (name, os.getpid()))
        n = sum(1 for line in (root / wanted["lock"]).read_text(encoding="utf-8").splitlines()
                if re.match(r"^[A-Za-z0-9]", line))
        log("%s: installing %d locked packages from %s%s (log: %s)"
            % (name, n, wanted["lock"], " [GPU]" if gpu else "", rel(root, logfile)))
        start = time.time()
        try:
            py = venv_python(tmp)
            run([uv, "venv", "--python", py_exe, "--prompt", name, tmp], root, logfile)
            sources = sources_for(py_exe, info)
            run([uv, "pip", "sync", "--require-hashes", "--python", py] + sources + [root / wanted["lock"]],
                root, logfile)
            if info["editable"]:
                # the checkout itself (no hash: it is this repository's own source)
                run([uv, "pip", "install", "--no-deps", "--python", py, "-e", root], root, logfile)
            if info["verify"]:
                run([py, "-c", VERIFY_CODE] + info["verify"], tmp, logfile)
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
        log("%s: ready in %.0f s, %.0f MB (%s)" % (name, time.time() - start, du_mb(final), rel(root, final)))
        return "built"


def lock_env(name, root=DEFAULT_ROOT, gpu=False, python=None):
    """(Re)write envs/locks/NAME[-gpu].txt from envs/NAME[-gpu].in with uv (hashes, Linux x86_64)."""
    root = Path(root).resolve()
    py_exe, _ = find_python(python)
    inp = input_file(root, name, gpu)
    lock = lock_file(root, inp)
    lock.parent.mkdir(parents=True, exist_ok=True)
    logs = root / ".venvs" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    logfile = logs / ("lock-%s.log" % inp.stem)
    logfile.write_text("", encoding="utf-8")
    uv = find_uv(root, py_exe, logfile)
    tmp = lock.with_name(lock.name + ".tmp")
    pylock = lock.with_name("pylock.%s-tmp.toml" % lock.stem)
    relock = "python3 envs/build.py --lock %s%s" % (name, " --gpu" if gpu and inp.stem.endswith("-gpu") else "")
    # GPU inputs resolve against PyPI only (CUDA builds); CPU inputs against this machine's sources
    sources = [] if inp.stem.endswith("-gpu") else sources_for(py_exe, directives(inp))
    compile_cmd = [uv, "pip", "compile", "--quiet", "--python-version", "%d.%d" % PYTHON_MINOR,
                   "--python-platform", LOCK_PLATFORM, "--custom-compile-command", relock] + sources + [inp.name]
    try:
        run(compile_cmd + ["--generate-hashes", "-o", tmp], inp.parent, logfile)
        # the same resolution as pylock.toml lists each wheel's size: the download a build makes
        run(compile_cmd + ["--format", "pylock.toml", "-o", pylock], inp.parent, logfile)
        mb = wheel_bytes(pylock.read_text(encoding="utf-8")) / 1e6
        body = tmp.read_text(encoding="utf-8")
        tmp.write_text("# inputs-sha256: %s\n# download-mb: %d (wheels for Linux x86_64, CPython %d.%d)\n%s"
                       % (inputs_sha256(inp), round(mb), PYTHON_MINOR[0], PYTHON_MINOR[1], body), encoding="utf-8")
        os.replace(str(tmp), str(lock))
    finally:
        for t in (tmp, pylock):
            if t.exists():
                t.unlink()
    log("%s: locked %s" % (inp.stem, rel(root, lock)))


# --------------------------------------------------------------------------- CLI


def list_envs(root, python):
    try:
        _, py_version = find_python(python)
    except BuildError:
        py_version = None
    for name in available_envs(root):
        venv = Path(root) / ".venvs" / name
        stamp = read_stamp(venv)
        if stamp is None:
            state = "not built"
        else:
            try:
                want = wanted_stamp(root, name, stamp.get("gpu", False), py_version or stamp.get("python"))
                state = "up to date" if stamp_matches(venv, want) else "stale"
            except BuildError:
                state = "stale (lock)"
            state += " (gpu)" if stamp.get("gpu") else " (cpu)"
        gpu_file = (Path(root) / "envs" / (name + "-gpu.in")).is_file()
        print("%-12s %-18s envs/%s.in%s" % (name, state, name, " + envs/%s-gpu.in" % name if gpu_file else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="envs/build.py", description="Build the locked StuCrs environments in .venvs/NAME/ with uv.")
    ap.add_argument("names", nargs="*", metavar="NAME", help="environment(s): envs/NAME.in")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--gpu", dest="mode", action="store_const", const="gpu",
                      help="use envs/NAME-gpu.in where it exists")
    mode.add_argument("--cpu", dest="mode", action="store_const", const="cpu", help="CPU variants (default)")
    mode.add_argument("--auto", dest="mode", action="store_const", const="auto",
                      help="GPU variants when nvidia-smi lists a GPU")
    ap.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    ap.add_argument("--python", metavar="PATH", help="Python 3.11 to build with (default: "
                    "$STUCRS_PYTHON, else python3.11 on PATH)")
    ap.add_argument("--lock", action="store_true", help="re-lock envs/locks/NAME[-gpu].txt from envs/NAME.in")
    ap.add_argument("--list", action="store_true", help="list the environments and their state")
    ap.add_argument("--print-python", metavar="NAME", help="print the Python of .venvs/NAME")
    ap.add_argument("--image-envs", action="store_true",
                    help="only the NAMEs the container image holds ($STUCRS_ENVS; all when it is unset)")
    ap.add_argument("--root", default=str(DEFAULT_ROOT), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.image_envs and os.environ.get("STUCRS_ENVS") is not None:
        held = os.environ["STUCRS_ENVS"].split()
        left_out = [n for n in args.names if n not in held]
        args.names = [n for n in args.names if n in held]
        if left_out:
            log("not in this image (STUCRS_ENVS=%s): %s" % (" ".join(held), ", ".join(left_out)))
        if not args.names:
            return 0
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
        if args.lock:
            for name in args.names:
                lock_env(name, root=root, gpu=gpu, python=args.python)
            return 0
        _, py_version = find_python(args.python)
        todo = [n for n in args.names
                if not stamp_matches(root / ".venvs" / n, wanted_stamp(root, n, gpu, py_version))]
        if todo:
            mb = sum(download_mb(lock_file(root, input_file(root, n, gpu))) for n in todo)
            log("to build: %s; up to %d MB of wheels to download (nothing for those in uv's cache)"
                % (", ".join(todo), mb))
        for name in args.names:
            build_env(name, root=root, gpu=gpu, force=args.force, python=args.python)
    except BuildError as exc:
        print("envs/build.py: error: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
