"""Helpers of the pipeline tests (test_pipeline*.py, test_mlflow_server.py).

* ``copy_repo(dest)`` copies the checkout as git sees it (tracked + untracked-not-ignored files),
  so that a test runs the pipeline in a scratch folder, never in the developer's results/.
* ``snakemake(...)`` runs the workspace environment's Snakemake in such a folder.
* ``fake_result(...)`` writes a result JSON + timeline CSV in the harness format
  (docs/en/architecture.md), for tests that do not train anything.

Environment variables: ``STUCRS_VENV_DIR`` (default ``<repo>/.venvs``) is handed to the pipeline as
``venv_dir`` so that no environment is rebuilt inside a test; the local MNIST copy is found by
``tests/mnist_setup.py`` (``STUCRS_MNIST_DIR``, ``../shared/mnist``, the verified cache).
"""

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "workflow" / "scripts"


def venv_dir():
    return Path(os.environ.get("STUCRS_VENV_DIR") or REPO / ".venvs").resolve()


def mnist_dir():
    """The local MNIST copy (tests/mnist_setup.py); the calling test skips when there is none."""
    import pytest
    from mnist_setup import SKIP_REASON, find_mnist

    found = find_mnist()
    if found is None:
        pytest.skip(SKIP_REASON)
    return found


def snakemake_exe():
    """Snakemake of the interpreter running the tests (the workspace environment), else PATH."""
    cand = Path(sys.executable).parent / "snakemake"
    if cand.exists():
        return str(cand)
    found = shutil.which("snakemake")
    if not found:
        raise RuntimeError("snakemake not found: run the tests with .venvs/workspace/bin/python")
    return found


def copy_repo(dest):
    """Copy the checkout's tracked and untracked-not-ignored files into ``dest``."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                         capture_output=True, check=True)
    dest = Path(dest)
    for name in out.stdout.decode("utf-8").split("\0"):
        if not name:
            continue
        src = REPO / name
        if not src.is_file():  # deleted in the working tree, or a submodule folder
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


def clean_env(**extra):
    env = dict(os.environ)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "SNAKEMAKE_PROFILE"):
        env.pop(key, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def snakemake(workdir, *args, env=None, timeout=900, check=False):
    """Run Snakemake in ``workdir``; returns the CompletedProcess (stdout+stderr in ``.output``)."""
    cmd = [snakemake_exe(), *map(str, args)]
    proc = subprocess.run(cmd, cwd=workdir, env=env or clean_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    proc.output = proc.stdout
    if check and proc.returncode != 0:
        raise AssertionError("snakemake %s failed (%d):\n%s"
                             % (" ".join(map(str, args)), proc.returncode, proc.output[-6000:]))
    return proc


def quick_args(*extra):
    """The arguments of the quick preset run of the tests (local MNIST, shared environments)."""
    return ["--configfile", "config/quick.yaml", "--config",
            "mnist_dir=%s" % mnist_dir(), "venv_dir=%s" % venv_dir(), *extra]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_metadata(workdir, path):
    """Snakemake's record of the job that made ``path`` (start/end times, rule, params)."""
    key = base64.urlsafe_b64encode(str(path).encode()).decode()
    meta = Path(workdir, ".snakemake", "metadata", key)
    with open(meta, encoding="utf-8") as fh:
        return json.load(fh)


def load_script(name):
    """Import workflow/scripts/NAME.py as a module (its folder on sys.path for its helpers)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location("stucrs_pipeline_" + name, SCRIPTS / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fake_result(out, network="mlp1", framework="stucrs", device="cpu", repeat=0, wall=2.0,
                epochs=2, acc0=0.8, status="ok", peak=300.0, samples=5, kernel="SkylakeX",
                over_paired_floor=None):
    """Write a result JSON in the harness format (and its timeline CSV); returns its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    jid = "%s-%s-%s-r%d" % (network, framework, device, repeat)
    ok = status == "ok"
    tl_name = out.name[: -len(".json")] + ".timeline.csv"
    metrics = {
        "wall_time_s": wall if ok else None,
        "epoch_times_s": [wall / epochs] * epochs if ok else [],
        "time_to_first_batch_s": 0.5 if ok else None,
        "cpu_user_s": wall * 1.5 if ok else None, "cpu_sys_s": 0.1 if ok else None,
        "cpu_time_s": wall * 1.5 + 0.1 if ok else None, "peak_rss_mb": peak if ok else None,
        "train_loss": [1.0 / (e + 1) for e in range(epochs)] if ok else [],
        "train_acc": [acc0 + 0.01 * e for e in range(epochs)] if ok else [],
        "test_loss": [1.1 / (e + 1) for e in range(epochs)] if ok else [],
        "test_acc": [acc0 + 0.01 * e for e in range(epochs)] if ok else [],
        "paired_floor_epoch_s": [] if over_paired_floor is None else [wall / epochs / over_paired_floor] * 2,
        "over_paired_floor": over_paired_floor,
    }
    res = {
        "schema_version": 1,
        "job": {"id": jid, "network": network, "framework": framework, "device": device,
                "repeat": repeat},
        "status": status,
        "message": "" if ok else "no GPU for %s" % jid,
        "params": {"epochs": epochs, "batch_size": 100, "lr": 0.01, "train_size": 1000,
                   "test_size": 200, "seed": 0, "threads": 2},
        "metrics": metrics,
        "timeline_csv": tl_name if ok else None,
        "environment": {"python": "3.11.7", "framework_version": "0.0", "numpy": "2.4.6",
                        "blas": [{"internal_api": "openblas", "num_threads": 2,
                                  "architecture": kernel}],
                        "cpu_model": "test CPU", "cores": 2, "threads": 2,
                        "git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False,
                        "data_sha256": {}, "hostname": "test", "platform": "Linux"},
    }
    out.write_text(json.dumps(res, indent=2), encoding="utf-8")
    if ok:
        lines = ["t_s,cpu_percent_core,cpu_percent_machine,rss_mb"]
        for i in range(samples):
            t = wall * (i + 1) / samples
            lines.append("%.3f,%.1f,%.1f,%.1f" % (t, 150.0 + i, 75.0 + i / 2, peak - 10 + i))
        (out.parent / tl_name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
