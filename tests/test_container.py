"""Container checks: Dockerfile (hadolint + structure), dev container config (schema),
scripts/gpu_check.py. The environments and envs/build.py are tested in tests/test_envs.py."""

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


def arg_defaults(ins):
    """{NAME: default} of the Dockerfile's ARG lines (the last default wins)."""
    out = {}
    for instr, args in ins:
        if instr == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            out[name.strip()] = value.strip().strip('"')
    return out


def expand(text, defaults):
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), text)


def test_dockerfile_builds_envs_through_build_py():
    text = DOCKERFILE.read_text()
    ins = dockerfile_instructions(text)
    defaults = arg_defaults(ins)
    froms = [expand(a, defaults).split() for i, a in ins if i == "FROM"]
    stages = {f[2] for f in froms if len(f) == 3 and f[1].upper() == "AS"}
    # the default build: BASE is the pinned CUDA runtime, the final stage is built on it
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu22\.04", defaults["BASE"]), defaults
    assert froms[-1][0] in stages and defaults["PYTHON_SOURCE"] == "uv", froms
    for f in froms:
        image = f[0]
        if image in stages:
            continue
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
            argv = [expand(a, defaults) for a in argv]
            names = [a for a in argv[argv.index("envs/build.py") + 1:] if not a.startswith("-")]
            assert "--gpu" in argv, "the default image holds the GPU variants"
            assert "--image-envs" in argv, "only the environments of FRAMEWORKS (STUCRS_ENVS)"
            for name in names:
                assert (ENVS / (name + ".in")).is_file(), name
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


def test_stale_venvs_volume_is_refreshed_after_rebuild():
    """The .venvs volume outlives "Rebuild Container": postCreateCommand must re-check every
    environment the image holds against its lock (envs/build.py rebuilds a stale stamp)."""
    doc = load_devcontainer()
    argv = shlex.split(doc["postCreateCommand"])
    assert argv[:2] == ["python3", "envs/build.py"]
    checked = {a for a in argv[2:] if not a.startswith("-")}
    image = set()
    for instr, args in dockerfile_instructions(DOCKERFILE.read_text()):
        if instr == "RUN" and "envs/build.py" in args:
            cmd = shlex.split(args)
            image |= {a for a in cmd[cmd.index("envs/build.py") + 1:] if not a.startswith("-")}
    assert checked == image == set(ENV_NAMES), (checked, image)
    # the stamp is the lock's hash (tests/test_envs.py checks that a changed lock means a rebuild)
    build_text = (ROOT / "envs" / "build.py").read_text()
    assert '"lock_sha256": sha256_bytes(lock.read_bytes())' in build_text


def test_recommended_extensions_work_with_the_environment():
    doc = load_devcontainer()
    extensions = doc["customizations"]["vscode"]["extensions"]
    lock = (ROOT / "envs" / "locks" / "workspace.txt").read_text()
    if "ms-toolsai.jupyter" in extensions:  # notebooks need a kernel in the interpreter VS Code uses
        assert re.search(r"^ipykernel==", lock, re.M), "ms-toolsai.jupyter recommended without ipykernel"
    assert doc["customizations"]["vscode"]["settings"]["python.defaultInterpreterPath"].endswith(
        "/.venvs/workspace/bin/python")


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


def test_build_arguments_for_a_test_build_are_declared_and_documented():
    """BASE, PYTHON_SOURCE, FRAMEWORKS and ENV_MODE switch the sources for a build where the default
    downloads are unreachable (scripts/container_check.sh); each is documented in one line, and the
    host's CA bundle reaches only the downloading steps, as a secret mount."""
    text = DOCKERFILE.read_text()
    ins = dockerfile_instructions(text)
    defaults = arg_defaults(ins)
    for name in ("BASE", "PYTHON_SOURCE", "FRAMEWORKS", "ENV_MODE"):
        assert name in defaults, name
        assert re.search(r"^#\s+%s\s+\S" % name, text, re.M), "build arg %s is not documented" % name
    assert set(defaults["FRAMEWORKS"].split()) == set(ENV_NAMES) - {"workspace"}
    stages = [a.split()[-1] for i, a in ins if i == "FROM" and " AS " in a.upper()]
    assert {"python-uv", "python-system"} <= set(stages)
    downloads = [a for i, a in ins if i == "RUN" and ("build.py" in a or "uv python install" in a)]
    assert downloads and all("--mount=type=secret,id=host_ca" in a for a in downloads), downloads
    assert not [a for i, a in ins if i in ("COPY", "ADD") and "ca-certificates" in a]  # never baked in
    assert 'STUCRS_ENVS="workspace ${FRAMEWORKS}"' in text  # postCreateCommand's --image-envs
