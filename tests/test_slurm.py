"""The pipeline on a real SLURM cluster: a single-node cluster from Debian's slurm-wlm and munge
(``scripts/slurm_local.sh up``), the profile ``workflow/profiles/slurm-local``, and the MLflow server
on PostgreSQL as the store, as it would be on a cluster. The cluster comes down even when a test
fails. Needs root and apt-get (CI and the developers' machines have both); elsewhere it skips.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pipeline_support import REPO, clean_env, copy_repo, mnist_dir, snakemake, venv_dir
from test_mlflow_server import _http, mlflow_server, postgres  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

JOBS = ["mlp1-stucrs-cpu-r0", "mlp1-numpy-cpu-r0"]
SMALL = ["variants=[{framework: stucrs, device: cpu}, {framework: numpy, device: cpu}]", "networks=[mlp1]",
         "profile={frameworks: []}", "gap={networks: []}"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0 or (shutil.which("slurmctld") is None and shutil.which("apt-get") is None):
        pytest.skip("a local SLURM cluster needs root and apt-get (scripts/slurm_local.sh)")
    # munged runs as the munge user: the folder must be reachable for it (pytest's are root-only)
    state = Path(tempfile.mkdtemp(prefix="stucrs-slurm-"))
    os.chmod(state, 0o755)
    env = dict(os.environ, STUCRS_SLURM_DIR=str(state))
    script = str(REPO / "scripts" / "slurm_local.sh")
    try:
        up = subprocess.run(["bash", script, "up"], env=env, capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        conf = re.search(r"export SLURM_CONF=(\S+)", up.stdout).group(1)
        yield {"SLURM_CONF": conf, "log": state / "log" / "slurmctld.log"}
    finally:
        down = subprocess.run(["bash", script, "down"], env=env, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not state.exists()


def _submitted(log):
    return re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", log.read_text())


def test_quick_preset_runs_through_slurm(cluster, mlflow_server, tmp_path):  # noqa: F811
    work = copy_repo(tmp_path / "w")
    env = clean_env(SLURM_CONF=cluster["SLURM_CONF"], MLFLOW_TRACKING_URI=mlflow_server)
    before = len(_submitted(cluster["log"]))
    proc = snakemake(work, "--profile", "workflow/profiles/slurm-local", "--configfile", "config/quick.yaml",
                     "--config", "mnist_dir=%s" % mnist_dir(), "venv_dir=%s" % venv_dir(), *SMALL,
                     env=env, timeout=1500)
    assert proc.returncode == 0, proc.output[-6000:]
    # every job but `all` was an sbatch job: the controller's log and the executor's SLURM logs
    timed = JOBS + ["mlp1-floor"]
    submitted = _submitted(cluster["log"])[before:]
    assert len(submitted) >= len(timed) + len(JOBS)  # train + floor + track (+ data and env jobs)
    slurm_logs = work / ".snakemake" / "slurm_logs"
    for rule in ("floor", "track", "aggregate", "figures"):
        assert list((slurm_logs / ("rule_" + rule)).rglob("*.log")), rule
    assert len(list((slurm_logs / "rule_train").rglob("*.log"))) == len(JOBS)
    # results and MLflow runs complete
    res = work / "results" / "quick"
    for j in JOBS:
        assert json.loads((res / "runs" / (j + ".json")).read_text())["status"] == "ok"
        marker = json.loads((res / "tracked" / (j + ".json")).read_text())
        run = _http(mlflow_server + "/api/2.0/mlflow/runs/get?run_id=" + marker["run_id"])["run"]
        assert run["info"]["status"] == "FINISHED"
    assert (res / "summary.csv").exists() and (res / "figures" / "training_time.png").exists()
    # timed jobs never overlapped on the node (the bench pool of one unit holds under SLURM too)
    spans = sorted((json.loads((res / "runs" / (j + ".json")).read_text())["metrics"]["start_unix_s"],
                    json.loads((res / "runs" / (j + ".json")).read_text())["metrics"]["end_unix_s"]) for j in JOBS)
    assert spans[0][1] <= spans[1][0]


def test_a_failing_job_fails_the_run_with_a_clear_message(cluster, tmp_path):
    work = copy_repo(tmp_path / "w")
    env = clean_env(SLURM_CONF=cluster["SLURM_CONF"])
    # a batch larger than the training data: the harness refuses it
    proc = snakemake(work, "--profile", "workflow/profiles/slurm-local", "--configfile", "config/quick.yaml",
                     "--config", "mnist_dir=%s" % mnist_dir(), "venv_dir=%s" % venv_dir(), *SMALL,
                     "run_name=failing", "train_size=50", "floor=false", "paired_floor_epochs=0",
                     "mlflow={experiment: failing, tracking_uri: 'sqlite:///results/mlflow.db'}",
                     env=env, timeout=900)
    assert proc.returncode != 0
    assert "Error in rule train" in proc.output
    logs = list((work / "results" / "failing" / "logs" / "train").glob("*.log"))
    assert logs and any("batch size 100 is larger than the 50 training examples" in p.read_text() for p in logs)
    assert not list((work / "results" / "failing" / "runs").glob("*.json"))
