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
    assert len(c.get_metric_history(run.info.run_id, "timeline_cpu_percent_machine")) == 5
    assert run.data.metrics["wall_time_s"] == pytest.approx(2.0)
    assert run.data.params["epochs"] == "3" and run.data.params["framework"] == "stucrs"
    tags = run.data.tags
    assert tags["job_id"] == "mlp1-stucrs-cpu-r0" and tags["network"] == "mlp1"
    assert tags["repeat"] == "0" and tags["device"] == "cpu" and tags["git_commit"]
    assert tags["env.cpu_model"] == "test CPU"
    arts = {a.path for a in c.list_artifacts(run.info.run_id, "result")}
    assert arts == {"result/mlp1-stucrs-cpu-r0.json", "result/mlp1-stucrs-cpu-r0.timeline.csv"}
    assert "environment.json" in {a.path for a in c.list_artifacts(run.info.run_id)}
    assert str(tmp_path / "art") in run.info.artifact_uri  # not ./mlruns

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
