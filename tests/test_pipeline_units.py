"""Pipeline scripts on fake results (no training): summary, figures, MLflow tracking.

Fast: the result JSONs are written by ``pipeline_support.fake_result`` in the harness format.
"""

import csv
import json
import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pipeline_support import SCRIPTS, fake_result, free_port, load_script, sha256

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path, min_bytes=5000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "%s is not a PNG" % path
    assert len(data) >= min_bytes, "%s is suspiciously small (%d bytes)" % (path, len(data))
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 300 and height >= 150, (path, width, height)


def check_svg(path, min_bytes=5000):
    assert path.stat().st_size >= min_bytes, path
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg"), (path, root.tag)


@pytest.fixture
def results(tmp_path):
    """Two networks x (stucrs, dezero, torch on CPU; torch on GPU) x 3 repeats + floors."""
    runs = tmp_path / "results" / "runs"
    paths = []
    walls = {"stucrs": 4.0, "dezero": 8.0, "torch": 2.0}
    for net, scale in (("mlp1", 1.0), ("cnn", 3.0)):
        for fw, wall in walls.items():
            for r in range(3):  # StuCrs's runs timed the floor in their own process too
                paths.append(fake_result(runs / ("%s-%s-cpu-r%d.json" % (net, fw, r)), net, fw,
                                         "cpu", r, wall=scale * wall + r, acc0=0.8 + 0.01 * r,
                                         peak=100.0 * (r + 1),
                                         over_paired_floor=(1.2, 1.05, 1.1)[r] if fw == "stucrs"
                                         else None))
        for r in range(3):
            paths.append(fake_result(runs / ("%s-torch-gpu-r%d.json" % (net, r)), net, "torch",
                                     "gpu", r, wall=0.5 * scale + 0.1 * r))
    floors = []  # repeated like the runs: mlp1's floor is the median of 0.5, 1.0 and 3.0
    for net, walls in (("mlp1", (1.0, 0.5, 3.0)), ("cnn", (2.0,))):
        for r, wall in enumerate(walls):
            p = fake_result(tmp_path / "results" / "floor" / ("%s-r%d.json" % (net, r)), net,
                            "stucrs", "cpu", r, wall=wall)
            res = json.loads(p.read_text())
            res["job"].update(framework="floor", id="%s-floor-cpu-r%d" % (net, r))
            p.write_text(json.dumps(res))
            floors.append(p)
    return paths, floors


def test_aggregate_summary(results, tmp_path):
    agg = load_script("aggregate")
    runs, floors = results
    out_csv, out_md = tmp_path / "summary.csv", tmp_path / "summary.md"
    agg.main([str(p) for p in runs], [str(p) for p in floors], out_csv, out_md)
    rows = list(csv.DictReader(out_csv.open()))
    by = {(r["network"], r["framework"], r["device"]): r for r in rows}
    # every variant of every network, plus one floor row per network
    assert len(rows) == 2 * 4 + 2
    r = by[("mlp1", "stucrs", "cpu")]
    assert float(r["wall_time_median_s"]) == pytest.approx(5.0)  # 4, 5, 6
    assert float(r["wall_time_min_s"]) == pytest.approx(4.0)
    assert float(r["wall_time_max_s"]) == pytest.approx(6.0)
    assert float(r["speedup_vs_dezero"]) == pytest.approx(9.0 / 5.0)  # dezero median 9
    assert float(r["test_acc"]) == pytest.approx(0.82)  # final epoch, median over repeats
    assert float(r["peak_rss_median_mb"]) == pytest.approx(200.0)
    assert float(r["gemm_floor_s"]) == pytest.approx(1.0)
    assert float(r["wall_over_floor"]) == pytest.approx(5.0)
    assert int(r["repeats_ok"]) == 3
    assert float(by[("mlp1", "dezero", "cpu")]["speedup_vs_dezero"]) == pytest.approx(1.0)
    assert float(by[("cnn", "floor", "cpu")]["wall_time_median_s"]) == pytest.approx(2.0)
    f = by[("mlp1", "floor", "cpu")]
    assert (int(f["repeats_ok"]), int(f["repeats_total"])) == (3, 3)
    assert float(f["wall_time_median_s"]) == pytest.approx(1.0) == float(f["gemm_floor_s"])
    assert (float(f["wall_time_min_s"]), float(f["wall_time_max_s"])) == (0.5, 3.0)
    assert float(f["wall_over_floor"]) == pytest.approx(1.0)
    # the ratio to the floor timed in each run's own process: the median of the runs' ratios
    assert float(r["over_paired_floor"]) == pytest.approx(1.1)
    assert by[("mlp1", "dezero", "cpu")]["over_paired_floor"] == ""  # none recorded
    assert f["over_paired_floor"] == ""
    # the OpenBLAS kernel is named for the variants that multiply through NumPy, on the CPU only
    assert r["blas_kernel"] == "SkylakeX" and by[("cnn", "floor", "cpu")]["blas_kernel"] == "SkylakeX"
    assert by[("mlp1", "torch", "cpu")]["blas_kernel"] == ""
    assert by[("mlp1", "torch", "gpu")]["blas_kernel"] == ""
    md = out_md.read_text()
    assert "| 5.0× | 1.10× | SkylakeX |" in md and "| 9.0× | – | SkylakeX |" in md
    assert "× floor, same process" in md
    for label in ("StuCrs (CPU)", "DeZero (CPU)", "PyTorch (CPU)", "PyTorch (GPU)",
                  "GEMM floor (CPU)"):
        assert md.count("| %s |" % label) == 2, label
    assert "5.00 (4.00–6.00)" in md
    # where and from what code: every run was on one machine, from one clean commit
    assert md.rstrip().endswith("Measured on test CPU (2 cores, 2 threads); code: commit 0123456789ab.")


def test_the_summary_names_every_machine_and_commit_and_changed_code(tmp_path):
    agg = load_script("aggregate")
    paths = []
    for repeat, (cpu, commit, dirty) in enumerate([("CPU A", "a" * 40, False), ("CPU B", "b" * 40, True),
                                                   ("CPU A", "a" * 40, False)]):
        p = fake_result(tmp_path / ("mlp1-stucrs-cpu-r%d.json" % repeat), repeat=repeat)
        res = json.loads(p.read_text())
        res["environment"].update(cpu_model=cpu, git_commit=commit, git_dirty=dirty)
        p.write_text(json.dumps(res))
        paths.append(str(p))
    agg.main(paths, [], tmp_path / "s.csv", tmp_path / "s.md", tmp_path / "s.html")
    line = ("Measured on CPU A (2 cores, 2 threads); CPU B (2 cores, 2 threads); code: commit "
            "aaaaaaaaaaaa, bbbbbbbbbbbb with uncommitted changes.")
    assert line in (tmp_path / "s.md").read_text() and line in (tmp_path / "s.html").read_text()


@pytest.mark.parametrize("dirty, tag", [(False, "false"), (True, "true"), (None, None)])
def test_source_tags_say_whether_the_code_was_the_commits(dirty, tag):
    track_mod = load_script("track")
    tags = track_mod.source_tags({"git_commit": "ab" * 20, "git_dirty": dirty})
    assert tags["mlflow.source.git.commit"] == "ab" * 20 and tags.get("git_dirty") == tag
    assert track_mod.source_tags({}) == {}  # an older result without the fields: no tags


def test_the_summary_names_no_machine_without_environments(tmp_path):
    agg = load_script("aggregate")
    assert agg.provenance([{"environment": {}}, {}]) == ""
    assert agg.provenance([{"environment": {"cpu_model": "X", "cores": None, "threads": 2}}]) == (
        "Measured on X (? cores, 2 threads); code: commit unknown (changes unknown).")


def test_aggregate_without_dezero_or_floor(tmp_path):
    agg = load_script("aggregate")
    p = fake_result(tmp_path / "mlp1-torch-cpu-r0.json", framework="torch")
    g = fake_result(tmp_path / "mlp1-torch-gpu-r0.json", framework="torch", device="gpu",
                    status="no_gpu")
    agg.main([str(p), str(g)], [], tmp_path / "s.csv", tmp_path / "s.md")
    rows = {r["device"]: r for r in csv.DictReader((tmp_path / "s.csv").open())}
    assert rows["cpu"]["speedup_vs_dezero"] == ""
    assert rows["gpu"]["status"] == "no_gpu" and rows["gpu"]["repeats_ok"] == "0"
    assert "0/1 (no_gpu)" in (tmp_path / "s.md").read_text()


@pytest.mark.parametrize("with_gpu", [True, False])
def test_figures(results, tmp_path, with_gpu):
    fig = load_script("figures")
    runs, _ = results
    if not with_gpu:
        runs = [p for p in runs if "-gpu-" not in p.name]
    out = tmp_path / ("figs_gpu" if with_gpu else "figs_cpu")
    out.mkdir()
    outputs = {"%s_%s" % (n, e): str(out / ("%s.%s" % (n, e)))
               for n in fig.NAMES for e in ("png", "svg")}
    fig.main([str(p) for p in runs], outputs)
    for name in fig.NAMES:
        check_png(out / (name + ".png"), min_bytes=3000)
        check_svg(out / (name + ".svg"), min_bytes=3000)
    svg = (out / "gpu_vs_cpu.svg").read_text()
    # the note figure names the reason; the real one has axes
    assert ("No GPU runs" in svg) != with_gpu


def test_timeline_and_epoch_tables(results):
    common = load_script("pipeline_common")
    runs, _ = results
    loaded = [common.load_result(p) for p in runs]
    ep = common.epochs_table(loaded)
    assert len(ep) == len(runs) * 2 and set(ep["epoch"]) == {1, 2}
    tl = common.timelines_table(list(zip(runs, loaded)))
    assert len(tl) == len(runs) * 5
    assert set(tl.columns) >= {"t_s", "cpu_percent_machine", "variant", "job_id"}


# --------------------------------------------------------------------------- MLflow tracking


@pytest.fixture
def track_mod():
    pytest.importorskip("mlflow")
    return load_script("track")


def _client(uri):
    from mlflow.tracking import MlflowClient
    return MlflowClient(uri)


def _active_runs(uri, experiment):
    c = _client(uri)
    exp = c.get_experiment_by_name(experiment)
    return c.search_runs([exp.experiment_id], max_results=1000) if exp else []


def test_track_idempotent_then_replaced(track_mod, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = "sqlite:///%s" % (tmp_path / "db" / "mlflow.db")
    res = fake_result(tmp_path / "results" / "runs" / "mlp1-stucrs-cpu-r0.json", epochs=3)
    doc = json.loads(res.read_text())
    doc["environment"]["data_sha256"] = {"x_train": "ab" * 32, "t_train": "cd" * 32}
    doc["metrics"].update(start_unix_s=1_800_000_000.25, end_unix_s=1_800_000_002.5)
    res.write_text(json.dumps(doc))
    marker = tmp_path / "results" / "tracked" / "mlp1-stucrs-cpu-r0.json"

    m1 = track_mod.track(res, marker, "exp", uri, str(tmp_path / "art"))
    m2 = track_mod.track(res, marker, "exp", uri, str(tmp_path / "art"))
    assert m1["run_id"] == m2["run_id"]
    assert json.loads(marker.read_text())["run_id"] == m1["run_id"]
    runs = _active_runs(uri, "exp")
    assert len(runs) == 1
    run = runs[0]
    c = _client(uri)
    hist = c.get_metric_history(run.info.run_id, "test_acc")
    assert [(m.step, round(m.value, 4)) for m in sorted(hist, key=lambda m: m.step)] == \
        [(1, 0.8), (2, 0.81), (3, 0.82)], "metrics duplicated or wrong"
    sysm = c.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    assert [m.step for m in sysm] == [0, 1, 2, 3, 4]  # the System metrics tab, sample by sample
    assert len(c.get_metric_history(run.info.run_id, "system/process_memory_rss_megabytes")) == 5
    assert not [k for k in run.data.metrics if k.startswith("timeline_")]
    assert run.info.start_time == 1_800_000_000_250 and run.info.end_time == 1_800_000_002_500
    assert c.get_experiment_by_name("exp").tags["mlflow.experimentKind"] == "custom_model_development"
    (ds,) = run.inputs.dataset_inputs
    assert ds.dataset.name.startswith("mnist") and len(ds.dataset.digest) == 32
    assert ds.tags[0].key == "mlflow.data.context" and ds.tags[0].value == "training"
    assert run.data.metrics["wall_time_s"] == pytest.approx(2.0)
    assert run.data.params["epochs"] == "3" and run.data.params["framework"] == "stucrs"
    tags = run.data.tags
    assert tags["job_id"] == "mlp1-stucrs-cpu-r0" and tags["network"] == "mlp1"
    assert tags["repeat"] == "0" and tags["device"] == "cpu" and tags["git_commit"]
    assert tags["git_dirty"] == "false"  # a run from changed code says so beside its commit (below)
    assert tags["env.cpu_model"] == "test CPU"
    assert "env.blas" not in tags and "env.data_sha256" not in tags  # blobs live in environment.json
    assert tags["mlflow.source.git.commit"] and tags["mlflow.source.name"] and tags["mlflow.user"]
    # artifacts relative to the folder the UI serves (mlflow ui --artifacts-destination ART)
    assert run.info.artifact_uri == "mlflow-artifacts:/exp/%s/artifacts" % run.info.run_id
    art = tmp_path / "art" / "exp" / run.info.run_id / "artifacts"
    assert sorted(p.relative_to(art).as_posix() for p in art.rglob("*") if p.is_file()) == [
        "environment.json", "result/mlp1-stucrs-cpu-r0.json", "result/mlp1-stucrs-cpu-r0.timeline.csv"]
    assert json.loads((art / "environment.json").read_text())["cpu_model"] == "test CPU"

    # the job was trained again: a new result replaces the run, still one active run
    fake_result(res, epochs=3, wall=3.0)
    m3 = track_mod.track(res, marker, "exp", uri, str(tmp_path / "art"))
    assert m3["run_id"] != m1["run_id"] and m3["replaced"] == [m1["run_id"]]
    runs = _active_runs(uri, "exp")
    assert [r.info.run_id for r in runs] == [m3["run_id"]]
    assert runs[0].data.metrics["wall_time_s"] == pytest.approx(3.0)
    assert not (tmp_path / "mlruns").exists()


def test_track_failure_is_clear_and_keeps_results(track_mod, tmp_path, capsys):
    res = fake_result(tmp_path / "runs" / "mlp1-torch-cpu-r0.json", framework="torch")
    before = sha256(res)
    marker = tmp_path / "tracked" / "mlp1-torch-cpu-r0.json"
    uri = "http://127.0.0.1:%d" % free_port()  # nothing listens there
    with pytest.raises(SystemExit) as exc:
        track_mod.run_safely(res, marker, "exp", uri, None)
    msg = str(exc.value.code)
    assert "MLflow tracking of mlp1-torch-cpu-r0.json failed" in msg
    assert "not reachable" in msg and "MLFLOW_TRACKING_URI" in msg and "kept" in msg
    assert not marker.exists() and sha256(res) == before


def test_redact_hides_password(track_mod):
    assert track_mod.redact("postgresql://u:secret@db:5432/m") == "postgresql://u:***@db:5432/m"
    assert track_mod.redact("sqlite:///results/mlflow.db") == "sqlite:///results/mlflow.db"


def test_concurrent_track_processes_on_fresh_sqlite(tmp_path):
    """Six tracking processes at once on a new SQLite store (nothing serialises them here):
    store creation races and 'database is locked' are retried; every run lands exactly once."""
    pytest.importorskip("mlflow")
    db = tmp_path / "mlflow.db"
    uri = "sqlite:///%s" % db
    procs = []
    for i in range(6):
        res = fake_result(tmp_path / "runs" / ("mlp2-stucrs-cpu-r%d.json" % i), "mlp2",
                          repeat=i, samples=200)
        procs.append(subprocess.Popen(
            [sys.executable, str(SCRIPTS / "track.py"), "--result", str(res),
             "--marker", str(tmp_path / "tracked" / res.name), "--experiment", "conc",
             "--tracking-uri", uri, "--artifact-location", str(tmp_path / "art")],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}))
    outs = [(p.wait(timeout=300), p.stdout.read()) for p in procs]
    for rc, out in outs:
        assert rc == 0, out[-3000:]
    runs = _active_runs(uri, "conc")
    assert sorted(r.data.tags["job_id"] for r in runs) == \
        ["mlp2-stucrs-cpu-r%d" % i for i in range(6)]
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_track_sqlite_locked_then_recovers(track_mod, tmp_path, monkeypatch):
    """Another process holds the SQLite store locked: tracking retries, then fails with a clear
    message and keeps the training result; once the lock is gone the same command succeeds."""
    import sqlite3

    monkeypatch.chdir(tmp_path)
    uri = "sqlite:///%s" % (tmp_path / "mlflow.db")
    first = fake_result(tmp_path / "runs" / "mlp1-stucrs-cpu-r0.json")
    track_mod.run_safely(first, tmp_path / "tracked" / "mlp1-stucrs-cpu-r0.json", "exp", uri, None)

    res = fake_result(tmp_path / "runs" / "mlp2-torch-cpu-r0.json", network="mlp2", framework="torch")
    before = sha256(res)
    marker = tmp_path / "tracked" / "mlp2-torch-cpu-r0.json"
    monkeypatch.setattr(track_mod, "ATTEMPTS", 2)
    monkeypatch.setattr(track_mod.time, "sleep", lambda s: None)

    holder = sqlite3.connect(tmp_path / "mlflow.db", timeout=0)
    holder.execute("BEGIN EXCLUSIVE")  # what a stuck writer elsewhere looks like
    try:
        with pytest.raises(SystemExit) as exc:
            track_mod.run_safely(res, marker, "exp", uri, None)
    finally:
        holder.rollback()
        holder.close()
    msg = str(exc.value.code)
    assert "MLflow tracking of mlp2-torch-cpu-r0.json failed" in msg and "locked" in msg
    assert not marker.exists() and sha256(res) == before

    track_mod.run_safely(res, marker, "exp", uri, None)  # the store is back: the rule re-runs
    assert marker.exists()
    jobs = sorted(r.data.tags.get("job_id") for r in _active_runs(uri, "exp"))
    assert jobs == ["mlp1-stucrs-cpu-r0", "mlp2-torch-cpu-r0"]


def test_two_checkouts_share_one_store_and_keep_all_runs(tmp_path):
    """Two clones (two results folders) track the same jobs into one SQLite store, one after the
    other and back again: each keeps its own runs, none is deleted, markers stay valid."""
    uri = "sqlite:///%s" % (tmp_path / "shared" / "mlflow.db")
    clones = [tmp_path / "clone-a", tmp_path / "clone-b"]
    jobs = ["mlp1-stucrs-cpu-r0", "mlp1-torch-cpu-r0"]
    for clone in clones:
        for j in jobs:
            fw = j.split("-")[1]
            fake_result(clone / "results" / "quick" / "runs" / (j + ".json"), "mlp1", fw)

    def track_all(clone):
        for j in jobs:
            r = subprocess.run([sys.executable, str(SCRIPTS / "track.py"), "--result", "results/quick/runs/%s.json" % j,
                                "--marker", "results/quick/tracked/%s.json" % j, "--experiment", "team",
                                "--tracking-uri", uri, "--artifact-location", str(tmp_path / "shared" / "art")],
                               cwd=clone, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr

    for order in (clones, clones[::-1]):  # a then b, then b then a (both directions)
        for clone in order:
            track_all(clone)
    c = _client(uri)
    exp = c.get_experiment_by_name("team")
    active = c.search_runs([exp.experiment_id], max_results=100)
    deleted = c.search_runs([exp.experiment_id], max_results=100, run_view_type=2)  # DELETED_ONLY
    assert len(active) == 4 and len(deleted) == 0
    assert len({r.data.tags["results_folder_id"] for r in active}) == 2
    for clone in clones:  # each clone's markers point at its own active runs
        for j in jobs:
            run_id = json.loads((clone / "results" / "quick" / "tracked" / (j + ".json")).read_text())["run_id"]
            assert c.get_run(run_id).info.lifecycle_stage == "active"


def test_client_creation_is_retried_with_bounded_backoff(track_mod, tmp_path, monkeypatch):
    import mlflow.tracking

    monkeypatch.chdir(tmp_path)
    real = mlflow.tracking.MlflowClient
    calls, slept = [], []

    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return real(*a, **kw)

    monkeypatch.setattr(mlflow.tracking, "MlflowClient", flaky)
    monkeypatch.setattr(track_mod.time, "sleep", slept.append)
    res = fake_result(tmp_path / "results" / "quick" / "runs" / "mlp1-stucrs-cpu-r0.json")
    track_mod.track(res, tmp_path / "m.json", "exp", "sqlite:///%s" % (tmp_path / "db.sqlite"), str(tmp_path / "art"))
    assert len(calls) == 3 and len(slept) == 2
    # back-off: about 0.5 s, then 1 s (with jitter 0.5x-1.5x), never more than 10 s per wait
    assert 0.25 <= slept[0] <= 0.75 and 0.5 <= slept[1] <= 1.5
    delays = [min(10.0, 0.5 * 2 ** (a - 1)) * 1.5 for a in range(1, track_mod.ATTEMPTS)]
    assert sum(delays) < 30  # a stuck store fails within half a minute


@pytest.mark.parametrize("uri", ["postgresql://mlflow:secret@127.0.0.1:{port}/mlflow",
                                 "http://user:secret@127.0.0.1:{port}"])
def test_unreachable_store_fails_in_seconds_with_one_message(track_mod, tmp_path, uri):
    import time as _time

    uri = uri.format(port=free_port())
    t0 = _time.monotonic()
    with pytest.raises(track_mod.TrackingError) as exc:
        track_mod.preflight(uri)
    assert _time.monotonic() - t0 < 6
    msg = str(exc.value)
    assert "is not reachable" in msg and "secret" not in msg and "***" in msg


def test_credentials_in_an_http_uri_are_used_and_masked(track_mod):
    import base64
    import http.server
    import threading

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(b"user:p@ss").decode()
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        track_mod.preflight("http://user:p%%40ss@127.0.0.1:%d" % port)  # the server is up: accepted
        with pytest.raises(track_mod.TrackingError) as exc:
            track_mod.preflight("http://user:wrong@127.0.0.1:%d" % port)
        assert "401" in str(exc.value) and "wrong" not in str(exc.value)
    finally:
        server.shutdown()


def test_damaged_sqlite_store_is_refused_with_recovery_advice(track_mod, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "mlflow.db"
    uri = "sqlite:///%s" % db
    track_mod.run_safely(fake_result(tmp_path / "r" / "runs" / "mlp1-stucrs-cpu-r0.json"),
                         tmp_path / "m1.json", "exp", uri, None)
    data = bytearray(db.read_bytes())
    page = 4096
    for i in range(2 * page + 100, min(len(data), 6 * page), 7):  # scribble over b-tree pages
        data[i] ^= 0x5A
    db.write_bytes(bytes(data))
    res = fake_result(tmp_path / "r" / "runs" / "mlp2-stucrs-cpu-r0.json", network="mlp2")
    with pytest.raises(SystemExit) as exc:
        track_mod.run_safely(res, tmp_path / "m2.json", "exp", uri, None)
    msg = str(exc.value.code)
    assert "is damaged" in msg and "mv " in msg and ".broken" in msg, msg[100:700]
    assert not (tmp_path / "m2.json").exists()


def test_unwritable_marker_is_a_clear_error(track_mod, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def refuse(path, obj):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(track_mod, "atomic_write_json", refuse)
    res = fake_result(tmp_path / "r" / "runs" / "mlp1-stucrs-cpu-r0.json")
    with pytest.raises(SystemExit) as exc:
        track_mod.run_safely(res, tmp_path / "tracked" / "m.json", "exp", "sqlite:///%s" % (tmp_path / "db"), None)
    msg = str(exc.value.code)
    assert "cannot be written" in msg and "make" in msg and "writable" in msg
    assert "Traceback" not in msg
