"""The shared-server path: PostgreSQL + ``mlflow server``, tracked by the pipeline, read via REST.

Starts a throw-away PostgreSQL cluster (initdb in a temporary folder, 127.0.0.1 on a free port;
as the ``postgres`` user when run as root), an ``mlflow server`` on it (127.0.0.1 only), tracks
fake results with the pipeline's ``track`` script and with the ``track`` rule (through
``MLFLOW_TRACKING_URI``), reads them back with MLflow's REST API, and tears everything down.

Needs the Debian package ``postgresql`` (initdb, pg_ctl, createdb) and ``psycopg2`` in the
workspace environment. Missing either is a failure, not a skip (CI installs them), unless the
environment variable ``STUCRS_SKIP_POSTGRES=1`` is set.
"""

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from pipeline_support import (SCRIPTS, clean_env, copy_repo, fake_result, free_port, mnist_dir,
                              snakemake, venv_dir)

EXPERIMENT = "stucrs-server-test"


def _missing(what):
    if os.environ.get("STUCRS_SKIP_POSTGRES") == "1":
        pytest.skip("STUCRS_SKIP_POSTGRES=1: %s" % what)
    pytest.fail(what + " (set STUCRS_SKIP_POSTGRES=1 to skip this test)", pytrace=False)


def _pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    _missing("PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package "
             "`postgresql` (apt-get install -y postgresql)")


def _as_pg_user(cmd):
    """Run as ``postgres`` when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return list(map(str, cmd))
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        _missing("running as root but there is no `postgres` user (the `postgresql` package "
                 "creates it)")
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *map(str, cmd)]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join("'%s'" % c for c in cmd)]


def _run(cmd, **kw):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=kw.pop("timeout", 120), **kw)
    if proc.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), proc.returncode, proc.stdout))
    return proc.stdout


def _http(url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode() or "{}")


def _need_psycopg2():
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _missing("psycopg2 is not installed in %s: add `psycopg2-binary==2.9.13` to "
                 "envs/workspace.txt" % sys.executable)


@pytest.fixture(scope="module")
def postgres():
    _need_psycopg2()  # before anything is started
    bindir = _pg_bindir()
    base = Path(tempfile.mkdtemp(prefix="stucrs-pg-"))
    os.chmod(base, 0o755)
    data, sock = base / "data", base / "sock"
    data.mkdir()
    sock.mkdir()
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        for d in (data, sock):
            os.chown(d, pg.pw_uid, pg.pw_gid)
    port = free_port()
    started = False
    try:
        _run(_as_pg_user([bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust",
                          "-E", "UTF8", "--no-sync"]), timeout=180)
        _run(_as_pg_user([bindir / "pg_ctl", "-D", data, "-l", data / "server.log", "-w",
                          "-t", "60", "-o",
                          "-h 127.0.0.1 -p %d -k %s -F" % (port, sock), "start"]), timeout=90)
        started = True
        _run(_as_pg_user([bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres",
                          "mlflow"]))
        yield "postgresql://postgres@127.0.0.1:%d/mlflow" % port
    finally:
        if started:
            subprocess.run(_as_pg_user([bindir / "pg_ctl", "-D", data, "-m", "fast", "-w",
                                        "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    art = tmp_path_factory.mktemp("mlflow-artifacts")
    log = open(art.parent / "mlflow-server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres,
         "--artifacts-destination", str(art), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise AssertionError("mlflow server did not come up:\n"
                                     + (art.parent / "mlflow-server.log").read_text()[-4000:])
            time.sleep(1)
        yield url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and its workers (our own group)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
        log.close()


def _runs_of(url, job):
    exp = _http(url + "/api/2.0/mlflow/experiments/get-by-name?experiment_name="
                + urllib.parse.quote(EXPERIMENT))["experiment"]
    found = _http(url + "/api/2.0/mlflow/runs/search",
                  {"experiment_ids": [exp["experiment_id"]],
                   "filter": "tags.job_id = '%s'" % job, "run_view_type": "ACTIVE_ONLY"})
    return found.get("runs", [])


def _history(url, run_id, key):
    q = urllib.parse.urlencode({"run_id": run_id, "metric_key": key})
    return _http(url + "/api/2.0/mlflow/metrics/get-history?" + q).get("metrics", [])


def test_track_script_against_server(mlflow_server, tmp_path):
    res = fake_result(tmp_path / "runs" / "mlp2-torch-cpu-r1.json", "mlp2", "torch", repeat=1,
                      epochs=3)
    cmd = [sys.executable, str(SCRIPTS / "track.py"), "--result", str(res),
           "--marker", str(tmp_path / "tracked" / res.name), "--experiment", EXPERIMENT,
           "--tracking-uri", mlflow_server]
    for _ in range(2):  # twice: the second run updates the same MLflow run
        out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env=clean_env())
        assert out.returncode == 0, out.stdout + out.stderr
    runs = _runs_of(mlflow_server, "mlp2-torch-cpu-r1")
    assert len(runs) == 1
    run = runs[0]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert tags["network"] == "mlp2" and tags["framework"] == "torch" and tags["repeat"] == "1"
    assert params["epochs"] == "3" and metrics["wall_time_s"] == pytest.approx(2.0)
    hist = _history(mlflow_server, run["info"]["run_id"], "test_acc")
    assert sorted(int(m["step"]) for m in hist) == [1, 2, 3]  # no duplicate after re-tracking
    marker = json.loads((tmp_path / "tracked" / res.name).read_text())
    assert marker["run_id"] == run["info"]["run_id"] and marker["tracking_uri"] == mlflow_server
    arts = _http(mlflow_server + "/api/2.0/mlflow/artifacts/list?run_id="
                 + run["info"]["run_id"] + "&path=result")
    assert {Path(f["path"]).name for f in arts.get("files", [])} == \
        {"mlp2-torch-cpu-r1.json", "mlp2-torch-cpu-r1.timeline.csv"}


def test_track_rule_against_server(mlflow_server, tmp_path):
    """The pipeline's own `track` jobs, pointed at the server with MLFLOW_TRACKING_URI, on
    results that already exist (only the `track` rule is allowed to run)."""
    work = copy_repo(tmp_path / "w")
    jobs = ["mlp1-stucrs-cpu-r0", "mlp1-torch-cpu-r0"]
    for j in jobs:
        net, fw, dev, rep = j.split("-")
        fake_result(work / "results" / "default" / "runs" / (j + ".json"), net, fw, dev, int(rep[1:]))
    targets = ["results/default/tracked/%s.json" % j for j in jobs]
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server)
    args = ["--allowed-rules", "track", "--config", "mnist_dir=%s" % mnist_dir(),
            "venv_dir=%s" % venv_dir(),
            "mlflow={experiment: %s, tracking_uri: 'sqlite:///unused.db'}" % EXPERIMENT]
    proc = snakemake(work, "--cores", "2", *targets, *args, env=env)
    assert proc.returncode == 0, proc.output[-4000:]
    assert "rule train" not in proc.output
    for j in jobs:
        runs = _runs_of(mlflow_server, j)
        assert len(runs) == 1, j
        marker = json.loads((work / "results" / "default" / "tracked" / (j + ".json")).read_text())
        assert marker["run_id"] == runs[0]["info"]["run_id"]
        assert marker["tracking_uri"] == mlflow_server
    assert not (work / "unused.db").exists() and not (work / "results" / "mlflow.db").exists()
