"""The real pipeline, end to end, with the quick preset (slow: a few minutes on two cores).

A scratch copy of the checkout runs
``snakemake --cores all --configfile config/quick.yaml --config mnist_dir=<shared MNIST>``
(with ``venv_dir`` pointing at the existing environments, so nothing is rebuilt). The tests of this
module then share that folder, in order: outputs, MLflow, timing isolation, report, an up-to-date
second run, and the faults (MLflow down then back, SIGTERM then resume, concurrent trackers).
"""

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline_support import (clean_env, copy_repo, free_port, job_metadata, mnist_dir,
                              quick_args, sha256, snakemake, snakemake_exe, venv_dir)

pytestmark = pytest.mark.slow
MAIN_OUTPUT = {}  # work folder -> what the main run printed

NETWORKS = ("mlp1", "cnn")  # config/quick.yaml
FRAMEWORKS = ("stucrs", "stucrs-book", "dezero", "tensorflow", "torch")
# plus the hand-written NumPy reference, planned for the dense networks only (StuCrs's environment)
JOBS = ["%s-%s-cpu-r0" % (n, f) for n in NETWORKS for f in FRAMEWORKS] + ["mlp1-numpy-cpu-r0"]
ENVS = ("stucrs", "dezero", "tensorflow", "torch")
FIGURES = ("training_time", "cpu_timeline", "cpu_cores", "test_accuracy", "peak_memory", "gpu_vs_cpu")
EXPERIMENT = "stucrs-quick"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    mnist_dir()  # skips the module's tests with the reason when there is no MNIST copy
    for fw in ENVS:
        if not (venv_dir() / fw / "bin" / "python").exists():
            pytest.fail("environment %s missing under %s: run `python3 envs/build.py %s` "
                        "(or set STUCRS_VENV_DIR)" % (fw, venv_dir(), fw))
    work = copy_repo(tmp_path_factory.mktemp("pipeline"))
    t0 = time.monotonic()
    # what `bash scripts/run.sh --configfile config/quick.yaml ...` runs (test_run_sh_* check that)
    report = "results/quick/report.html"
    proc = snakemake(work, "--cores", "all", "--report", report, "--report-after-run", *quick_args(),
                     timeout=1800, env=clean_env(STUCRS_REPORT=report))
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.output[-8000:]
    MAIN_OUTPUT[work] = proc.output
    print("quick pipeline: %.0f s" % elapsed)
    return work


def _client(work):
    from mlflow.tracking import MlflowClient
    return MlflowClient("sqlite:///%s" % (work / "results" / "mlflow.db"))


def _runs_by_job(work):
    c = _client(work)
    exp = c.get_experiment_by_name(EXPERIMENT)
    assert exp is not None
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    by = {}
    for r in runs:
        by.setdefault(r.data.tags.get("job_id"), []).append(r)
    return by


def _dry_run_jobs(work, *extra, env=None):
    """{rule: count} of a dry run (its "Job stats" table); {} when nothing is to be done."""
    proc = snakemake(work, "-n", "--cores", "all", *quick_args(), *extra, env=env)
    assert proc.returncode == 0, proc.output[-4000:]
    if "Nothing to be done" in proc.output:
        return {}, proc.output
    table = proc.output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}, proc.output


def test_outputs_and_summary(work):
    for j in JOBS:
        assert (work / "results" / "quick" / "runs" / (j + ".json")).stat().st_size > 0
        assert (work / "results" / "quick" / "runs" / (j + ".timeline.csv")).exists()
        assert (work / "results" / "quick" / "tracked" / (j + ".json")).exists()
    for net in NETWORKS:
        assert (work / "results" / "quick" / "floor" / (net + "-r0.json")).exists()
    rows = list(csv.DictReader((work / "results" / "quick" / "summary.csv").open()))
    got = {(r["network"], r["framework"], r["device"]) for r in rows}
    want = {(n, f, "cpu") for n in NETWORKS for f in FRAMEWORKS + ("floor",)} | {("mlp1", "numpy", "cpu")}
    assert got == want
    for r in rows:
        assert float(r["wall_time_median_s"]) > 0
        if r["framework"] != "floor":
            assert 0 < float(r["test_acc"]) <= 1 and float(r["peak_rss_median_mb"]) > 0
    md = (work / "results" / "quick" / "summary.md").read_text()
    for label in ("StuCrs (CPU)", "StuCrs (book) (CPU)", "DeZero (CPU)", "TensorFlow (CPU)",
                  "PyTorch (CPU)", "GEMM floor (CPU)"):
        assert md.count("| %s |" % label) == len(NETWORKS), label
    assert md.count("| NumPy by hand (CPU) |") == 1  # no hand-written CNN



def test_profiles_explain_the_wall_time(work):
    # one profile per network for each DeZero-API framework: forward/backward rows per Function
    # class, the optimizer update, and the rest; the shares add up to the whole run
    for net in NETWORKS:
        for fw in ("stucrs", "dezero"):
            rows = list(csv.DictReader((work / "results" / "quick" / "profile" / ("%s-%s.csv" % (net, fw))).open()))
            names = {(r["phase"], r["name"]) for r in rows}
            assert ("forward", "Linear") in names and ("backward", "Linear") in names, (net, fw, names)
            assert ("update", "SGD") in names and ("other", "loop, data, accuracy") in names
            if net == "cnn":
                assert ("forward", "Conv2d") in names and ("forward", "Pooling") in names
            assert sum(float(r["share"]) for r in rows) == pytest.approx(1.0, abs=0.01)
            assert all(float(r["total_s"]) >= 0 for r in rows)
            md = (work / "results" / "quick" / "profile" / ("%s-%s.md" % (net, fw))).read_text()
            assert md.startswith("# Profile of %s-%s-cpu-r0" % (net, fw)) and "| forward | Linear |" in md


def test_gap_splits_each_network(work):
    # quick preset: the gap of StuCrs to the floor for each network it trains (mlp1, cnn)
    gap = work / "results" / "quick" / "gap"
    assert sorted(p.name for p in gap.iterdir()) == sorted("%s.%s" % (n, ext) for n in NETWORKS
                                                          for ext in ("csv", "json", "md"))
    variants = {"mlp1": ["stucrs", "free bias", "free relu", "free bias+relu", "free gather",
                         "free bias+relu+gather", "floor"],
                "cnn": ["stucrs", "free relu", "free pooling", "free dropout mask", "free dropout",
                        "free relu+pooling+dropout", "free relu+pooling+masking", "floor"]}
    for net, batch in (("mlp1", 100), ("cnn", 128)):
        rows = list(csv.DictReader((gap / ("%s.csv" % net)).open()))
        assert [r["variant"] for r in rows] == variants[net]
        assert all(r["rounds"] == "2" and r["steps"] == "10" for r in rows)
        assert float(rows[-1]["over_floor"]) == 1.0 and float(rows[0]["saving_us"]) == 0.0
        md = (gap / ("%s.md" % net)).read_text()
        assert md.startswith("# Gap of StuCrs to the GEMM floor, %s: batch %d, 2 round(s) of 10 steps"
                             % (net, batch))


def test_figures_are_valid_images(work):
    for name in FIGURES:
        png = (work / "results" / "quick" / "figures" / (name + ".png")).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, name
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width >= 300 and height >= 150, (name, width, height)
        svg = work / "results" / "quick" / "figures" / (name + ".svg")
        assert svg.stat().st_size > 5000 and ET.parse(svg).getroot().tag.endswith("svg"), name


def test_mlflow_holds_one_run_per_job(work):
    by = _runs_by_job(work)
    assert sorted(by) == sorted(JOBS)
    c = _client(work)
    for j, runs in by.items():
        assert len(runs) == 1, j
        run = runs[0]
        assert run.info.status == "FINISHED"
        for key in ("wall_time_s", "cpu_time_s", "peak_rss_mb", "test_acc", "train_loss",
                    "final_test_acc", "system/cpu_utilization_percentage",
                    "system/process_memory_rss_megabytes", "system/process_cpu_cores_busy"):
            assert key in run.data.metrics, (j, key)
        assert not [k for k in run.data.metrics if k.startswith("timeline_")]
        # the System metrics tab: samples at their real time, steps 0, 1, 2, ...
        sysm = c.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
        assert [m.step for m in sysm] == list(range(len(sysm)))
        assert all(run.info.start_time <= m.timestamp <= run.info.end_time + 1000 for m in sysm)
        # the run's own times are the training's, not the tracking's
        result = json.loads((work / "results" / "quick" / "runs" / (j + ".json")).read_text())
        assert run.info.start_time == int(result["metrics"]["start_unix_s"] * 1000)
        assert run.info.end_time == int(result["metrics"]["end_unix_s"] * 1000)
        # Datasets and Source columns of the UI
        (ds,) = run.inputs.dataset_inputs
        assert ds.dataset.name.startswith("mnist") and len(ds.dataset.digest) == 32
        assert json.loads(ds.dataset.source)["local_dir"] == str(mnist_dir())
        assert run.data.tags["mlflow.source.git.commit"] == result["environment"]["git_commit"]
        assert run.data.tags["mlflow.source.name"] and run.data.tags["mlflow.user"]
        assert all(len(v) <= 80 for k, v in run.data.tags.items() if k.startswith("env."))
        hist = c.get_metric_history(run.info.run_id, "test_acc")
        assert [m.step for m in hist] == [1], j  # quick preset: one epoch
        net, fw, dev, rep = re.fullmatch(r"([^-]+)-(.+)-(cpu|gpu)-(r\d+)", j).groups()
        if fw in ("stucrs", "stucrs-book", "numpy") and dev == "cpu":  # the floor timed in the run's process too
            assert run.data.metrics["over_paired_floor"] > 0, j
        else:
            assert "over_paired_floor" not in run.data.metrics, j
        assert run.data.tags["network"] == net and run.data.tags["framework"] == fw
        assert run.data.tags["device"] == dev and run.data.tags["repeat"] == rep[1:]
        assert "git_commit" in run.data.tags and "env.python" in run.data.tags
        assert run.data.params["epochs"] == "1"
        marker = (work / "results" / "quick" / "tracked" / (j + ".json")).read_text()
        assert run.info.run_id in marker
    assert not (work / "mlruns").exists()
    exp = c.get_experiment_by_name(EXPERIMENT)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    # artifacts relative to the folder the UI serves: the store survives moving the checkout
    assert exp.artifact_location == "mlflow-artifacts:/" + EXPERIMENT
    run = by[JOBS[0]][0]
    art = work / "results" / "mlflow-artifacts" / EXPERIMENT / run.info.run_id / "artifacts"
    assert (art / "environment.json").is_file() and (art / "result" / (JOBS[0] + ".json")).is_file()


def test_timed_jobs_never_overlap(work):
    """Training and floor jobs ran alone: no other job of the run overlapped any of them, and
    MLflow writers never overlapped each other (both without any --resources flag)."""
    by_job = {}  # one entry per job (its outputs share the job hash)
    for path in sorted((work / "results").rglob("*")) + sorted((work / "resources").rglob("*")):
        if not path.is_file():
            continue
        try:
            meta = job_metadata(work, path.relative_to(work))
        except FileNotFoundError:
            continue
        key = (meta["rule"], meta["job_hash"])
        start, end, _ = by_job.get(key, (meta["starttime"], meta["endtime"], path.name))
        by_job[key] = (min(start, meta["starttime"]), max(end, meta["endtime"]), path.name)
    spans = {(rule, start, end): name for (rule, _), (start, end, name) in by_job.items()}
    jobs = sorted(spans, key=lambda j: j[1])
    timed = [j for j in jobs if j[0] in ("train", "floor", "profile", "gap")]
    assert len(timed) == len(JOBS) + len(NETWORKS) + 2 * len(NETWORKS) + len(NETWORKS)  # gap: each
    for t in timed:
        for o in jobs:
            if o == t:
                continue
            assert o[2] <= t[1] + 0.05 or o[1] >= t[2] - 0.05, \
                "%s overlaps the timed job %s" % (spans[o], spans[t])
    tracks = [j for j in jobs if j[0] == "track"]
    for a, b in zip(tracks, tracks[1:]):
        assert a[2] <= b[1] + 0.05, "tracking jobs overlapped: %s, %s" % (spans[a], spans[b])


def test_main_command_leaves_the_report_under_the_presets_folder(work):
    out = work / "results" / "quick" / "report.html"
    assert out.stat().st_size > 100_000
    head = out.read_bytes()[:5000].lower()
    assert b"<html" in head or b"<!doctype html" in head
    assert "writing the HTML report results/quick/report.html" in MAIN_OUTPUT[work]
    # a preset never writes into another preset's folder
    assert not (work / "results" / "default").exists()
    assert sorted(p.name for p in (work / "results").iterdir()) == ["mlflow-artifacts", "mlflow.db", "mlflow.db.lock", "quick"]


def test_report_shows_the_summary_table_and_each_figure_once(work):
    text = (work / "results" / "quick" / "report.html").read_text(encoding="utf-8", errors="replace")
    entries = set(re.findall(r"filename=([A-Za-z0-9_.-]+)", text))  # the report's embedded results
    assert {"summary.html", "summary.csv"} <= entries
    for name in FIGURES:
        assert name + ".png" in entries, name
        assert name + ".svg" not in entries, name  # one entry per figure (the SVG lies beside the PNG)
    assert "['mlp1', 'cnn']" not in text and "mlp1, cnn" in text  # readable landing text
    assert "Smoke test" in text
    summary = (work / "results" / "quick" / "summary.html").read_text(encoding="utf-8")
    assert '<table id="summary">' in summary and summary.count("<tr>") >= 1 + len(JOBS)
    assert "Smoke test (preset <code>quick</code>)" in summary
    assert "parts made free one at a time" in text  # the landing text names the Profile category
    # under the table: where and from what code the runs were measured (the copy the test runs
    # is no git checkout: its commit is unknown, and the line says so instead of passing it off)
    cpu = json.loads(next((work / "results" / "quick" / "runs").glob("*.json")).read_text())["environment"]
    assert ("Measured on %s (%s cores, %s threads); code: commit unknown (changes unknown).</p>"
            % (cpu["cpu_model"], cpu["cores"], cpu["threads"])) in summary


def test_second_run_has_nothing_to_do(work):
    jobs, out = _dry_run_jobs(work)
    assert jobs == {}, out[-3000:]


def test_mlflow_down_then_recovers(work):
    runs_dir = work / "results" / "quick" / "runs"
    before = {p.name: sha256(p) for p in runs_dir.iterdir()}
    bad = clean_env(MLFLOW_TRACKING_URI="http://127.0.0.1:%d" % free_port())
    jobs, _ = _dry_run_jobs(work, env=bad)
    assert set(jobs) == {"track", "all"}  # another store: only the tracking re-runs

    proc = snakemake(work, "--cores", "all", *quick_args(), env=bad)
    assert proc.returncode != 0
    assert "MLflow tracking of" in proc.output and "not reachable" in proc.output, \
        proc.output[-4000:]
    assert "MLFLOW_TRACKING_URI" in proc.output
    assert {p.name: sha256(p) for p in runs_dir.iterdir()} == before  # results kept
    missing = [j for j in JOBS if not (work / "results" / "quick" / "tracked" / (j + ".json")).exists()]
    assert missing, "the failed tracking job's marker must not exist"

    jobs, _ = _dry_run_jobs(work)  # back to the configured store: only the failed job(s)
    assert set(jobs) == {"track", "all"} and jobs["track"] == len(missing)
    proc = snakemake(work, "--cores", "all", *quick_args())
    assert proc.returncode == 0, proc.output[-4000:]
    # typed without scripts/run.sh: the last lines name the one command that writes the report
    assert "HTML report: run `bash scripts/run.sh` (it writes results/quick/report.html)" in proc.output
    by = _runs_by_job(work)
    assert sorted(by) == sorted(JOBS) and all(len(r) == 1 for r in by.values())
    c = _client(work)
    for j in missing:  # updated in place: the metric history holds no duplicate
        assert len(c.get_metric_history(by[j][0].info.run_id, "test_acc")) == 1
    assert _dry_run_jobs(work)[0] == {}


def _harness_pids(out_json):
    """PIDs of the harness processes (Python, not their shell) writing ``out_json``."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path("/proc", pid, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (argv and argv[0].endswith(b"python") and b"workflow.bench" in argv
                and out_json.encode() in argv):
            pids.append(int(pid))
    return pids


def _catches_sigterm(pid):
    """Whether process ``pid`` has installed a handler for SIGTERM (the SigCgt mask of /proc)."""
    try:
        status = Path("/proc", str(pid), "status").read_text()
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)


def test_killed_job_then_rerun_redoes_only_unfinished(work, tmp_path):
    """Two jobs are trained again; the second one's process gets SIGTERM half-way (as a
    scheduler or an OOM killer would do). The harness leaves no result, Snakemake stops, and the
    next run plans exactly the unfinished training job (plus what depends on it)."""
    pair = ["mlp1-stucrs-cpu-r0", "mlp1-dezero-cpu-r0"]
    untouched = {p.name: p.stat().st_mtime for p in (work / "results" / "quick" / "runs").iterdir()
                 if not p.name.startswith(tuple(pair))}
    force = ["--forcerun"] + ["results/quick/runs/%s.json" % j for j in pair]
    log = open(tmp_path / "snakemake.log", "w")
    proc = subprocess.Popen([snakemake_exe(), "--cores", "all", *quick_args(), *force],
                            cwd=work, env=clean_env(), stdout=log, stderr=subprocess.STDOUT)
    done = todo = None
    t_start = time.time()
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None and done is None:
            fresh = [j for j in pair if (work / "results" / "quick" / "runs" / (j + ".json")).exists()
                     and (work / "results" / "quick" / "runs" / (j + ".json")).stat().st_mtime > t_start]
            if len(fresh) == 1:
                other = [j for j in pair if j != fresh[0]][0]
                pids = [pid for pid in _harness_pids("results/quick/runs/%s.json" % other)
                        if _catches_sigterm(pid)]
                if pids:
                    # the harness has its SIGTERM handler: a moment later it is inside its
                    # try block (importing NumPy and the framework, loading the data, training);
                    # a fixed delay from the first sight of the process could miss a quick job
                    time.sleep(0.1)
                    for pid in pids:
                        os.kill(pid, signal.SIGTERM)
                    done, todo = fresh[0], other
            time.sleep(0.05)
        rc = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "snakemake.log").read_text()
    assert done is not None, "never saw one job finished and the other running:\n" + output[-4000:]
    assert rc != 0 and "Error in rule train" in output, output[-4000:]
    assert "terminated (SIGTERM)" in (work / "results" / "quick" / "logs" / "train" / (todo + ".log")).read_text()
    assert (work / "results" / "quick" / "runs" / (done + ".json")).exists()
    assert not (work / "results" / "quick" / "runs" / (todo + ".json")).exists()  # no partial result
    for name, mtime in untouched.items():
        assert (work / "results" / "quick" / "runs" / name).stat().st_mtime == mtime, name

    jobs, out = _dry_run_jobs(work)
    assert jobs.get("train") == 1, out[-4000:]
    assert "output: results/quick/runs/%s.json" % todo in out
    assert "output: results/quick/runs/%s.json" % done not in out

    proc = snakemake(work, "--cores", "all", *quick_args())
    assert proc.returncode == 0, proc.output[-4000:]
    assert _dry_run_jobs(work)[0] == {}
    by = _runs_by_job(work)  # re-trained jobs replaced their MLflow runs: still one each
    assert sorted(by) == sorted(JOBS) and all(len(r) == 1 for r in by.values())


def test_concurrent_tracking_on_sqlite(work):
    """Eight tracking jobs, four at a time (the mlflow pool opened up), on the SQLite store:
    no lock error, no corruption, no duplicate run."""
    proc = snakemake(work, "--cores", "4", "--resources", "mlflow=4", "--forcerun", "track",
                     *quick_args())
    assert proc.returncode == 0, proc.output[-4000:]
    assert "database is locked" not in proc.output
    spans = sorted((m["starttime"], m["endtime"]) for m in (
        job_metadata(work, Path("results/quick/tracked") / (j + ".json")) for j in JOBS))
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "no two tracking jobs overlapped"
    with sqlite3.connect(work / "results" / "mlflow.db") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    by = _runs_by_job(work)
    assert sorted(by) == sorted(JOBS) and all(len(r) == 1 for r in by.values())
    c = _client(work)
    for runs in by.values():
        assert len(c.get_metric_history(runs[0].info.run_id, "wall_time_s")) == 1


def test_repeats_run_in_rounds(tmp_path):
    """Timed jobs run repeat by repeat (every variant's r0, then every r1): a slow phase of the
    machine then hits one repeat of several variants, not all repeats of one (rule priority)."""
    work = copy_repo(tmp_path / "rounds")
    cfg = tmp_path / "rounds.yaml"
    cfg.write_text("run_name: rounds\nnetworks: [mlp1]\nrepeats: 2\ntrain_size: 300\ntest_size: 100\n"
                   "network_params:\n  mlp1: {epochs: 1}\n"
                   "variants:\n  - {framework: stucrs, device: cpu}\n"
                   "  - {framework: numpy, device: cpu}\n"
                   "profile: {frameworks: []}\nmlflow: {experiment: stucrs-rounds}\n")
    proc = snakemake(work, "--cores", "all", "--configfile", "config/quick.yaml", "--configfile",
                     str(cfg), "--config", "mnist_dir=%s" % mnist_dir(),
                     "venv_dir=%s" % venv_dir(), timeout=900)
    assert proc.returncode == 0, proc.output[-6000:]
    starts = {}
    for path in ["results/rounds/runs/mlp1-%s-cpu-r%d.json" % (fw, r) for fw in ("stucrs", "numpy")
                 for r in (0, 1)] + ["results/rounds/floor/mlp1-r%d.json" % r for r in (0, 1)]:
        starts[path] = job_metadata(work, path)["starttime"]
    first = [t for p, t in starts.items() if p.endswith("r0.json")]
    second = [t for p, t in starts.items() if p.endswith("r1.json")]
    assert max(first) < min(second), sorted(starts.items(), key=lambda kv: kv[1])


def test_report_and_mlflow_ui_in_a_real_browser(work):
    """Headless Chromium: the MLflow UI lists every run of the preset (Model training view), and
    the report's Summary entry shows the summary table; screenshots go to results/quick/screenshots/."""
    import base64
    import html as html_mod
    import re
    import shutil as sh

    import browser

    shots = work / "results" / "quick" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)

    # the MLflow UI on the run's store, as scripts/mlflow_ui.sh starts it
    port = browser.free_port()
    exp_id = _client(work).get_experiment_by_name(EXPERIMENT).experiment_id
    mlflow_exe = str(Path(snakemake_exe()).parent / "mlflow")
    argv = [mlflow_exe, "ui", "--backend-store-uri", "sqlite:///results/mlflow.db",
            "--artifacts-destination", "results/mlflow-artifacts", "--host", "127.0.0.1", "--port", str(port)]
    with browser.serving(argv, "http://127.0.0.1:%d/" % port, cwd=work):
        url = "http://127.0.0.1:%d/#/experiments/%s?workflowType=machine_learning" % (port, exp_id)
        dom = browser.run_chromium(url, dump_dom=True)
        missing = [j for j in JOBS if j not in dom]
        assert not missing, "runs table lacks %s" % missing
        assert "mnist (prepared arrays)" in dom  # the Datasets column
        browser.run_chromium(url, screenshot=shots / "mlflow_runs.png", size="1500,900")
    assert (shots / "mlflow_runs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the report: open Summary, then the summary entry's viewer
    site = work / "report-site"
    site.mkdir()
    sh.copy(work / "results" / "quick" / "report.html", site / "report.html")
    (site / "index.html").write_text(browser.REPORT_WRAPPER.replace("CATEGORY", "Summary").replace("LABEL", "summary"))
    server, port = browser.static_server(site)
    with server:
        url = "http://127.0.0.1:%d/index.html" % port
        dom = browser.run_chromium(url, dump_dom=True, budget_ms=15000)
        browser.run_chromium(url, screenshot=shots / "report_summary.png", budget_ms=15000)
    m = re.search(r'<div id="out" data-category="(\d)" data-entry="(\d)">([^<]*)</div>', dom)
    assert m and m.group(1) == "1" and m.group(2) == "1", dom[-1500:]
    src = html_mod.unescape(m.group(3))
    assert src.startswith("data:text/html"), src[:100]
    shown = base64.b64decode(src.split("base64,", 1)[1]).decode("utf-8")
    assert '<table id="summary">' in shown and all(j.split("-r0")[0].split("-")[0] in shown for j in JOBS)
    assert shown.count("<tr>") == 1 + len(JOBS) + len(NETWORKS)  # header, every variant, the floors
    assert (shots / "report_summary.png").stat().st_size > 20_000
