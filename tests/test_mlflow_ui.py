"""The MLflow UI is never open to the network by accident: 127.0.0.1 unless --expose is given."""
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mlflow_ui.sh"


def _run(*args):
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True)


def test_default_binds_loopback_only():
    out = _run("--print-command")
    assert out.returncode == 0, out.stderr
    assert "--host 127.0.0.1" in out.stdout and "0.0.0.0" not in out.stdout
    assert "sqlite:///results/mlflow.db" in out.stdout
    assert "WARNING" not in out.stderr


def test_expose_needs_the_flag_and_warns():
    out = _run("--expose", "--port", "5055", "--print-command")
    assert out.returncode == 0
    assert "--host 0.0.0.0" in out.stdout and "--port 5055" in out.stdout
    assert "without authentication" in out.stderr


def test_unknown_option_is_a_clear_error():
    out = _run("--host", "0.0.0.0")
    assert out.returncode == 2
    assert "unknown option '--host'" in out.stderr and "--expose" in out.stderr


def _command_lines(path):
    """Shell commands as written in a file: the code blocks of Markdown, every line elsewhere;
    backslash continuations joined and trailing `# comments` dropped."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
        prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
        spans = re.findall(r"`([^`\n]+)`", prose)  # inline code such as `mlflow ui ...`
        text = "\n".join(blocks + spans)
    text = re.sub(r"\\\n\s*", " ", text)
    for line in text.splitlines():
        code = re.sub(r"(^|\s)#.*$", "", line) if path.suffix != ".json" else line
        yield line, code


def test_every_documented_ui_command_binds_loopback():
    """README, docs, devcontainer and Makefile: any `mlflow ui`/`mlflow server` command names
    127.0.0.1 (or goes through scripts/mlflow_ui.sh, which does)."""
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / ".devcontainer" / "devcontainer.json"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    offenders = []
    checked = 0
    for f in files:
        if not f.exists():
            continue
        for line, code in _command_lines(f):
            if re.search(r"\bmlflow (ui|server)\b", code):
                checked += 1
                if "127.0.0.1" not in code and "--expose" not in code:
                    offenders.append(f"{f.relative_to(ROOT)}: {line.strip()}")
    assert checked > 0, "no MLflow UI command found in the docs: the check itself is broken"
    assert not offenders, "MLflow UI commands without --host 127.0.0.1:\n" + "\n".join(offenders)


def test_command_line_reader_joins_continuations(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("prose about mlflow server\n```bash\nmlflow server \\\n  --port 1\n"
                  "pytest x  # starts an mlflow server\n```\n", encoding="utf-8")
    codes = [c for _, c in _command_lines(md)]
    assert any("mlflow server" in c and "--port 1" in c for c in codes)
    assert not any("starts an mlflow server" in c for c in codes)
    assert not any("prose" in c for c in codes)
    md.write_text("Run `mlflow ui --port 5000` to look.\n", encoding="utf-8")
    assert [c for _, c in _command_lines(md)] == ["mlflow ui --port 5000"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _own_local_ip():
    """An address of this machine other than loopback (None when there is none)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


@pytest.mark.skipif(not (ROOT / ".venvs" / "workspace" / "bin" / "mlflow").exists(),
                    reason="needs the workspace environment (python3 envs/build.py workspace)")
def test_real_ui_listens_on_loopback_only(tmp_path):
    port = _free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/ui.db")
    proc = subprocess.Popen(["bash", str(SCRIPT), "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 90
        up = False
        while time.time() < deadline and not up:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    up = True
            except OSError:
                time.sleep(0.5)
        assert up, "the MLflow UI did not start within 90 s"
        ip = _own_local_ip()
        if ip is not None:
            with pytest.raises(OSError):
                socket.create_connection((ip, port), timeout=2).close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
