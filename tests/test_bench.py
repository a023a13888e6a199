"""Benchmark harness (``python -m workflow.bench``): prepare, run per framework, floor, failures.

Every run goes through a subprocess with the framework's own environment ``.venvs/<framework>/``
(built by ``python3 envs/build.py NAME``), from the repository root, on small subsets of MNIST.
A framework whose environment is missing is skipped with that reason; CI builds them all.
"""

import csv
import inspect
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
from mnist_setup import SKIP_REASON, find_mnist

REPO = Path(__file__).resolve().parents[1]
VENVS = REPO / ".venvs"
MNIST_DIR = find_mnist() or Path(os.environ.get("STUCRS_MNIST_DIR") or (REPO.parent / "shared" / "mnist")).resolve()
# the hand-written NumPy reference runs in the StuCrs environment, dense networks only
TIMEOUT = 300

sys.path.insert(0, str(REPO))
from workflow.bench import data as bench_data  # noqa: E402
from workflow.bench.contract import ENV_OF, FRAMEWORKS, MALLOC_TUNED_ENV  # noqa: E402
from workflow.bench import networks, record  # noqa: E402
from workflow.bench.floor import gemm_shapes  # noqa: E402

METRIC_KEYS = {"wall_time_s", "epoch_times_s", "time_to_first_batch_s", "cpu_user_s", "cpu_sys_s",
               "cpu_time_s", "peak_rss_mb", "train_loss", "train_acc", "test_loss", "test_acc",
               "paired_floor_epoch_s", "over_paired_floor", "start_unix_s", "end_unix_s"}
ENV_KEYS = {"python", "framework_version", "numpy", "blas", "openblas_kernel", "malloc", "blas_update", "matmul_plan",
            "stucrs_fast", "cpu_model", "cores", "threads", "git_commit", "git_dirty", "data_sha256", "hostname",
            "platform"}
PARAM_KEYS = {"epochs", "batch_size", "lr", "train_size", "test_size", "seed", "threads"}
TOP_KEYS = {"schema_version", "job", "status", "message", "params", "metrics", "timeline_csv",
            "environment"}


def venv_of(framework):
    return VENVS / ENV_OF.get(framework, framework) / "bin" / "python"


def env_python(framework):
    py = venv_of(framework)
    if not py.exists():
        env = ENV_OF.get(framework, framework)
        pytest.skip(".venvs/%s is missing (build it with `python3 envs/build.py %s`)" % (env, env))
    return str(py)


def bench(python, *args, timeout=TIMEOUT):
    return subprocess.run([python, "-m", "workflow.bench", *map(str, args)], cwd=str(REPO),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(SKIP_REASON)
    out = tmp_path_factory.mktemp("data") / "mnist_prepared.npz"
    r = bench(sys.executable, "prepare", "--mnist-dir", MNIST_DIR, "--out", out)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def run_job(framework, prepared, out, *extra, network="mlp1", expect_rc=0):
    r = bench(env_python(framework), "run", "--framework", framework, "--network", network,
              "--data", prepared, "--out", out, "--no-progress", "--threads", 2, *extra)
    assert r.returncode == expect_rc, "rc %d\nstdout:\n%s\nstderr:\n%s" % (
        r.returncode, r.stdout, r.stderr[-4000:])
    return r


MLP_ARGS = ("--train-size", 1000, "--test-size", 500, "--epochs", 2, "--lr", 0.1)
_mlp_cache = {}


@pytest.fixture(scope="module")
def mlp_result(prepared, outdir):
    def get(framework):
        if framework not in _mlp_cache:
            out = outdir / ("mlp1-%s.json" % framework)
            run_job(framework, prepared, out, *MLP_ARGS)
            _mlp_cache[framework] = (out, json.loads(out.read_text()))
        return _mlp_cache[framework]
    return get


def check_result(res, out, framework, network, epochs):
    assert set(res) == TOP_KEYS
    assert res["schema_version"] == 2
    assert res["status"] == "ok" and res["message"] == ""
    assert res["job"] == {"id": "%s-%s-cpu-r0" % (network, framework), "network": network,
                          "framework": framework, "device": "cpu", "repeat": 0}
    assert set(res["params"]) == PARAM_KEYS and res["params"]["threads"] == 2
    m = res["metrics"]
    assert set(m) == METRIC_KEYS
    if res["status"] == "ok":  # the wall-clock bounds of the timed region (the MLflow run's times)
        assert m["start_unix_s"] < m["end_unix_s"] and m["end_unix_s"] - m["start_unix_s"] >= m["wall_time_s"] - 0.05
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "epoch_times_s"):
        assert len(m[key]) == epochs, key
        assert all(isinstance(v, float) and math.isfinite(v) for v in m[key]), key
    assert m["wall_time_s"] >= sum(m["epoch_times_s"]) * 0.999 > 0
    assert m["paired_floor_epoch_s"] == [] and m["over_paired_floor"] is None  # not asked for
    assert m["cpu_time_s"] == pytest.approx(m["cpu_user_s"] + m["cpu_sys_s"])
    assert m["cpu_time_s"] > 0 and m["peak_rss_mb"] > 10
    assert 0 < m["time_to_first_batch_s"] < 600
    env = res["environment"]
    assert set(env) == ENV_KEYS
    assert env["framework_version"] and env["numpy"] and env["python"].startswith("3.")
    assert env["threads"] == 2 and env["cores"] >= 1 and env["git_commit"]
    # the code it ran: a commit and whether tracked files differed (None only without git)
    assert env["git_dirty"] is True or env["git_dirty"] is False or (
        env["git_dirty"] is None and env["git_commit"] == "unknown")
    assert set(env["data_sha256"]) == set(bench_data.MNIST_SHA256)
    assert isinstance(env["blas"], list)
    assert env["openblas_kernel"]["mode"] == "auto" and env["openblas_kernel"]["why"]
    # the harness sets glibc malloc alike for every NumPy-based variant (--malloc tuned, the default)
    # before the process starts; PyTorch and TensorFlow keep glibc's default
    if framework in ("stucrs", "stucrs-book", "dezero", "numpy"):
        assert env["malloc"] == "tuned: " + ", ".join("%s=%s" % kv for kv in MALLOC_TUNED_ENV.items())
    else:
        assert env["malloc"] == "default", env["malloc"]
    assert env["stucrs_fast"] is {"stucrs": True, "stucrs-book": False}.get(framework)
    # StuCrs's SGD updates its large weights through NumPy's BLAS (stucrs.fast.blas): axpy, and gemm
    # for the dense layers' weights; the book's SGD never looks for the BLAS
    update = env["blas_update"]
    if framework == "stucrs-book":
        assert update.startswith("not looked up"), update
    if framework == "stucrs" and platform.system() == "Linux":
        assert "axpy" in update and "gemm" in update and update.split(" of ", 1)[1], update
    elif framework in ("dezero", "tensorflow", "torch"):
        assert update == "StuCrs not loaded"
    # which way StuCrs computed each large gy @ W.T (none in these small runs' shapes is required)
    if framework == "stucrs":
        assert isinstance(env["matmul_plan"], dict)
        assert all(v in ("direct", "transposed", "measuring") for v in env["matmul_plan"].values())
    elif framework in ("dezero", "tensorflow", "torch"):
        assert env["matmul_plan"] == "StuCrs not loaded"
    timeline = out.with_name(res["timeline_csv"])
    assert timeline.name == out.name[:-5] + ".timeline.csv"
    rows = list(csv.reader(timeline.open()))
    assert rows[0] == ["t_s", "cpu_percent_core", "cpu_percent_machine", "rss_mb"]
    assert len(rows) >= 2 and all(len(r) == 4 for r in rows[1:])
    assert all(float(r[3]) > 0 for r in rows[1:])


# --------------------------------------------------------------------------- in-process units


def test_networks_weights_are_seeded_and_scaled():
    for name in networks.NETWORKS:
        spec = networks.get_spec(name)
        w1, w2 = networks.init_weights(spec, 0), networks.init_weights(spec, 0)
        w3 = networks.init_weights(spec, 1)
        for (Wa, ba), (Wb, bb), (Wc, _) in zip(w1["dense"], w2["dense"], w3["dense"]):
            assert Wa.dtype == np.float32 and np.array_equal(Wa, Wb) and not np.array_equal(Wa, Wc)
            assert not ba.any()
            assert Wa.std() == pytest.approx(np.sqrt(1 / Wa.shape[0]), rel=0.1)
    spec = networks.get_spec("cnn")
    w = networks.init_weights(spec, 0)
    assert w["conv"].shape == (32, 1, 3, 3)
    assert [W.shape for W, _ in w["dense"]] == [(5408, 128), (128, 10)]
    assert [W.shape for W, _ in networks.init_weights(networks.get_spec("2"), 0)["dense"]] == [
        (784, 1000), (1000, 1000), (1000, 10)]


def test_cnn_dense_rows_follow_nhwc_flatten():
    spec = networks.get_spec("cnn")
    rng = np.random.default_rng(0)
    feat = rng.standard_normal((2, 32, 13, 13)).astype(np.float32)  # NCHW features
    W = rng.standard_normal((32 * 13 * 13, 5)).astype(np.float32)
    want = feat.reshape(2, -1) @ W
    got = feat.transpose(0, 2, 3, 1).reshape(2, -1) @ networks.cnn_dense_rows_to_nhwc(W, spec)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_network_names_and_aliases():
    assert [networks.resolve(a) for a in ("1", "2", "3", "MLP2")] == ["mlp1", "mlp2", "cnn", "mlp2"]
    with pytest.raises(ValueError, match="mlp1, mlp2, cnn"):
        networks.resolve("mlp9")


def test_read_idx():
    payload = bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(range(6))
    a = bench_data.read_idx(payload)
    assert a.shape == (2, 3) and a.dtype == np.uint8 and a[1, 2] == 5
    with pytest.raises(bench_data.DataError):
        bench_data.read_idx(payload[:-1])
    with pytest.raises(bench_data.DataError):
        bench_data.read_idx(b"\x01\x02\x08\x01")


def test_gemm_floor_shapes():
    mlp2 = gemm_shapes(networks.get_spec("mlp2"), 100)
    assert mlp2 == [("fwd", 100, 784, 1000), ("grad_W", 784, 100, 1000),
                    ("fwd", 100, 1000, 1000), ("grad_W", 1000, 100, 1000), ("grad_x", 100, 1000, 1000),
                    ("fwd", 100, 1000, 10), ("grad_W", 1000, 100, 10), ("grad_x", 100, 10, 1000)]
    cnn = gemm_shapes(networks.get_spec("cnn"), 128)
    assert cnn[:2] == [("fwd", 128 * 26 * 26, 9, 32), ("grad_W", 9, 128 * 26 * 26, 32)]
    assert ("grad_x", 128, 128, 5408) in cnn


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_dirty_tells_changed_tracked_files_from_untracked_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repository above
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false",
                        *args], cwd=tmp_path, check=True, capture_output=True)

    assert record.git_dirty(tmp_path) is None and record.git_commit(tmp_path) == "unknown"  # no repo
    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-qm", "code")
    assert record.git_dirty(tmp_path) is False and len(record.git_commit(tmp_path)) == 40
    (tmp_path / "results.csv").write_text("a\n")  # an untracked output does not count
    assert record.git_dirty(tmp_path) is False
    (tmp_path / "code.py").write_text("x = 2\n")  # the code the run used is not the commit's
    assert record.git_dirty(tmp_path) is True
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # git missing: unknown, not clean
    assert record.git_dirty(tmp_path) is None and record.git_commit(tmp_path) == "unknown"


def test_a_run_records_the_code_it_started_with(monkeypatch):
    """The git state is read once, when the harness starts (cli.main), not when the result is
    written: a file changed or a commit made during a long run does not show in its record."""
    from workflow.bench import cli

    current = ["a" * 40, False]
    monkeypatch.setattr(record, "_SOURCE", {})
    monkeypatch.setattr(record, "git_commit", lambda root=None: current[0])
    monkeypatch.setattr(record, "git_dirty", lambda root=None: current[1])
    assert record.source_at_start() == {"git_commit": "a" * 40, "git_dirty": False}
    current[:] = ["b" * 40, True]  # a commit, then an edit, while the run trains
    env = record.environment("0", 2, {})
    assert (env["git_commit"], env["git_dirty"]) == ("a" * 40, False)
    assert "record.source_at_start()" in inspect.getsource(cli.main)  # the harness reads it first


def test_source_label_names_the_commit_and_its_state():
    from workflow.bench.contract import source_label

    commit = "0123456789abcdef"
    assert source_label({"git_commit": commit, "git_dirty": False}) == "0123456789ab"
    assert source_label({"git_commit": commit, "git_dirty": True}) == "0123456789ab with uncommitted changes"
    assert source_label({"git_commit": commit, "git_dirty": None}) == "0123456789ab (changes unknown)"
    assert source_label({"git_commit": commit}) == "0123456789ab (changes unknown)"  # older results
    assert source_label({}) == "unknown (changes unknown)"


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "r.json"

    def write(f):
        f.write('{"half": ')
        raise SystemExit(143)  # what the SIGTERM handler raises mid-write

    with pytest.raises(SystemExit):
        record.atomic_write(target, write)
    assert list(tmp_path.iterdir()) == []
    record.atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --------------------------------------------------------------------------- prepare


def test_prepare(prepared):
    side = json.loads(prepared.with_suffix(".json").read_text())
    assert side["sha256"] == bench_data.MNIST_SHA256
    d = bench_data.load(prepared, 1000, 500)
    assert d["x_train"].shape == (1000, 784) and d["x_train"].dtype == np.float32
    assert d["t_train"].dtype == np.int64 and d["x_test"].shape == (500, 784)
    assert list(d["t_train"][:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    full = bench_data.load(prepared)
    assert full["x_train"].shape == (60000, 784) and full["x_test"].shape == (10000, 784)
    assert 0.0 <= full["x_train"].min() and full["x_train"].max() <= 1.0
    assert full["x_train"].mean() == pytest.approx(0.1307, abs=1e-3)
    with pytest.raises(bench_data.DataError, match="out of range"):
        bench_data.load(prepared, 70000)


# --------------------------------------------------------------------------- runs per framework


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_run_mlp1(framework, mlp_result):
    out, res = mlp_result(framework)
    check_result(res, out, framework, "mlp1", 2)
    m = res["metrics"]
    assert res["params"] == {"epochs": 2, "batch_size": 100, "lr": 0.1, "train_size": 1000,
                             "test_size": 500, "seed": 0, "threads": 2}
    assert m["train_loss"][1] < m["train_loss"][0]
    assert m["test_loss"][1] < m["test_loss"][0]
    assert m["test_acc"][-1] > 0.5 and m["train_acc"][-1] > 0.5  # chance is 0.1


@pytest.mark.parametrize("framework", [fw for fw in FRAMEWORKS if fw != "numpy"])
def test_run_cnn_small(framework, prepared, outdir):
    out = outdir / ("cnn-%s.json" % framework)
    run_job(framework, prepared, out, "--train-size", 512, "--test-size", 256, "--epochs", 2,
            "--batch-size", 64, network="3")
    res = json.loads(out.read_text())
    check_result(res, out, framework, "cnn", 2)
    m = res["metrics"]
    assert m["train_loss"][1] < m["train_loss"][0]
    assert m["test_acc"][-1] > 0.3


def test_frameworks_agree_on_mlp1(mlp_result):
    """Same initial weights, same batches, same lr: every framework walks the same path."""
    have = [fw for fw in FRAMEWORKS if venv_of(fw).exists()]
    if len(have) < 2:
        pytest.skip("fewer than two framework environments in .venvs/")
    ref = mlp_result(have[0])[1]["metrics"]
    for fw in have[1:]:
        m = mlp_result(fw)[1]["metrics"]
        for key in ("train_loss", "test_loss"):
            np.testing.assert_allclose(m[key], ref[key], rtol=2e-3, err_msg="%s %s" % (fw, key))
        np.testing.assert_allclose(m["test_acc"], ref["test_acc"], atol=0.011, err_msg=fw)


def test_numpy_reference_is_stucrs_without_the_framework(mlp_result):
    """The hand-written loop computes what StuCrs computes (to float32 rounding), with less code."""
    ours = mlp_result("stucrs")[1]["metrics"]
    out, res = mlp_result("numpy")
    assert res["environment"]["framework_version"].startswith("numpy ")
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        np.testing.assert_allclose(res["metrics"][key], ours[key], rtol=1e-4, atol=1e-6, err_msg=key)


def test_malloc_default_is_glibcs_own_and_recorded(prepared, outdir):
    out = outdir / "mlp1-stucrs-malloc-default.json"
    run_job("stucrs", prepared, out, "--train-size", 200, "--test-size", 100, "--epochs", 1,
            "--malloc", "default")
    assert json.loads(out.read_text())["environment"]["malloc"] == "default"


def test_the_book_variant_is_stucrs_without_its_fast_paths(mlp_result):
    """StuCrs (book) trains the same path as StuCrs (fast paths change the rounding only)."""
    fast, book = mlp_result("stucrs")[1], mlp_result("stucrs-book")[1]
    assert fast["environment"]["stucrs_fast"] is True and book["environment"]["stucrs_fast"] is False
    assert book["environment"]["matmul_plan"] == {}
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        np.testing.assert_allclose(book["metrics"][key], fast["metrics"][key], rtol=1e-4, atol=1e-6,
                                   err_msg=key)


def test_the_harness_modules_import_no_cycle_and_no_stucrs_private_name():
    """workflow/bench: the import graph of its modules is acyclic; the NumPy-by-hand reference and
    the contract import nothing of StuCrs."""
    import ast
    bench_dir = REPO / "workflow" / "bench"
    graph = {}
    for path in list(bench_dir.glob("*.py")) + list((bench_dir / "adapters").glob("*.py")):
        pkg = "workflow.bench" + (".adapters" if path.parent.name == "adapters" else "")
        name = pkg + ("" if path.stem == "__init__" else "." + path.stem)
        deps = set()
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level: what importing this module imports
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                target = base + ("." + node.module if node.module else "")
                deps.add(target)
                deps.update(target + "." + a.name for a in node.names)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                assert not (path.stem in ("numpy_adapter", "contract") and any(
                    m and m.split(".")[0] == "stucrs" for m in mods)), (path, mods)
        graph[name] = deps
    graph = {k: {d for d in v if d in graph and d != k} for k, v in graph.items()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in graph[node]:
            assert state.get(dep) != "open", "import cycle: " + " -> ".join(stack + [node, dep])
            if dep not in state:
                visit(dep, stack + [node])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [])


def test_numpy_reference_refuses_the_cnn(tmp_path):
    r = bench(sys.executable, "run", "--framework", "numpy", "--network", "cnn", "--data", "x.npz",
              "--out", tmp_path / "x.json")
    assert r.returncode == 2 and "dense networks only (mlp1, mlp2), not cnn" in r.stderr, r.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("framework", ["stucrs", "torch"])
def test_same_seed_same_losses(framework, mlp_result, prepared, outdir):
    _, first = mlp_result(framework)
    out = outdir / ("mlp1-%s-again.json" % framework)
    run_job(framework, prepared, out, *MLP_ARGS)
    again = json.loads(out.read_text())["metrics"]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        np.testing.assert_allclose(again[key], first["metrics"][key], rtol=0, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_gpu_variant_without_gpu_is_a_clean_result(framework, prepared, outdir):
    out = outdir / ("gpu-%s.json" % framework)
    r = run_job(framework, prepared, out, "--device", "gpu", "--train-size", 200, "--test-size", 100,
                "--epochs", 1)
    res = json.loads(out.read_text())
    assert set(res) == TOP_KEYS and res["job"]["device"] == "gpu"
    assert res["job"]["id"] == "mlp1-%s-gpu-r0" % framework
    if res["status"] == "ok":  # a machine with a GPU
        return
    assert res["status"] == "no_gpu"
    assert "no GPU for mlp1-%s-gpu-r0" % framework in res["message"]
    assert set(res["metrics"]) == METRIC_KEYS and res["metrics"]["train_loss"] == []
    assert res["environment"]["framework_version"]
    assert "no_gpu" in r.stdout


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_non_finite_loss_stops_without_result(framework, prepared, outdir):
    out = outdir / ("nan-%s.json" % framework)
    r = run_job(framework, prepared, out, "--lr", "1e38", "--train-size", 500, "--test-size", 100,
                "--epochs", 2, expect_rc=3)
    assert "non-finite training loss" in r.stderr and "at epoch 1, step " in r.stderr, r.stderr
    assert not out.exists() and not out.with_name(out.stem + ".timeline.csv").exists()


@pytest.mark.parametrize("sig,expected_rc", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_leaves_no_json(prepared, tmp_path, sig, expected_rc):
    framework = next((fw for fw in ("dezero", "stucrs", "torch")
                      if (VENVS / fw / "bin" / "python").exists()), None)
    if framework is None:
        pytest.skip("no .venvs/dezero, .venvs/stucrs or .venvs/torch")
    out = tmp_path / "term.json"
    # SIGINT at its default in the child: a shell without job control (a script, `cmd &`, nohup)
    # starts background commands with SIGINT ignored, which exec keeps, and Python then raises no
    # KeyboardInterrupt (as intended for background jobs); the test suite may run that way
    proc = subprocess.Popen(
        [str(VENVS / framework / "bin" / "python"), "-m", "workflow.bench", "run", "--framework",
         framework, "--network", "mlp2", "--data", str(prepared), "--out", str(out), "--epochs", "50",
         "--threads", "1"],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = threading.Event()
    err = []

    def reader():
        for chunk in iter(lambda: proc.stderr.read(1), ""):
            err.append(chunk)
            if "epoch 1/50" in "".join(err[-200:]):
                seen.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        assert seen.wait(120), "training never started: " + "".join(err)
        time.sleep(1.0)
        proc.send_signal(sig)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == expected_rc, "".join(err)[-2000:]
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


# --------------------------------------------------------------------------- floor


def test_floor(prepared, outdir):
    for network, extra in (("mlp2", ()), ("cnn", ("--batch-size", 64))):
        out = outdir / ("floor-%s.json" % network)
        r = bench(sys.executable, "floor", "--network", network, "--data", prepared, "--out", out,
                  "--train-size", 300, "--test-size", 100, "--epochs", 2, "--no-progress",
                  "--threads", 2, *extra)
        assert r.returncode == 0, r.stderr
        res = json.loads(out.read_text())
        assert set(res) == TOP_KEYS and res["status"] == "ok"
        assert res["job"]["framework"] == "floor" and res["job"]["id"] == "%s-floor-cpu-r0" % network
        m = res["metrics"]
        assert set(m) == METRIC_KEYS and len(m["epoch_times_s"]) == 2 and m["wall_time_s"] > 0
        assert m["train_loss"] == [] and res["params"]["train_size"] == 300
        assert res["params"]["gemm_library"] == "numpy"
        assert (out.parent / res["timeline_csv"]).stat().st_size > 0


def test_paired_floor_is_timed_in_the_runs_process(prepared, outdir):
    """run --paired-floor-epochs K: the last K epochs are each followed by one floor epoch in the
    run's own process, and the ratio is the median over these pairs of epoch / floor epoch."""
    out = outdir / "mlp1-stucrs-paired.json"
    r = run_job("stucrs", prepared, out, "--train-size", 1000, "--test-size", 500, "--epochs", 3,
                "--lr", 0.1, "--paired-floor-epochs", 2)
    m = json.loads(out.read_text())["metrics"]
    assert len(m["epoch_times_s"]) == 3
    assert len(m["paired_floor_epoch_s"]) == 2 and all(t > 0 for t in m["paired_floor_epoch_s"])
    pairs = [t / f for t, f in zip(m["epoch_times_s"][1:], m["paired_floor_epoch_s"])]
    assert m["over_paired_floor"] == pytest.approx(statistics.median(pairs))
    assert "x the floor timed in this process" in r.stdout
    # the floor epochs are outside the timed region: the wall time is the epochs' (and the
    # set-up of the first batch), not the epochs plus the floor
    assert m["wall_time_s"] < sum(m["epoch_times_s"]) + 0.5 * sum(m["paired_floor_epoch_s"]) + 0.5

    out = outdir / "mlp1-stucrs-paired-all.json"
    run_job("stucrs", prepared, out, *MLP_ARGS, "--paired-floor-epochs", 9)  # more than the epochs
    m = json.loads(out.read_text())["metrics"]
    assert len(m["paired_floor_epoch_s"]) == len(m["epoch_times_s"]) == 2


def test_paired_floor_runs_the_floors_products(monkeypatch):
    from workflow.bench import floor
    calls = {"train": 0, "test": 0}
    monkeypatch.setattr(floor._Operands, "train", lambda self: calls.__setitem__("train", calls["train"] + 1))
    monkeypatch.setattr(floor._Operands, "test", lambda self: calls.__setitem__("test", calls["test"] + 1))
    spec = networks.get_spec("mlp2")
    params = {"batch_size": 100, "train_size": 1050, "test_size": 250}
    assert floor.paired_floor_epoch(spec, params, seed=0) > 0
    assert calls == {"train": 11, "test": 3}  # every batch of one epoch


_METER_SCRIPT = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from workflow.bench import record

def busy(seconds):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pass

meter = record.ResourceMeter(interval=0.05).start()
time.sleep(0.3)
if sys.argv[2] == "pause":
    with meter.paused():
        busy(0.6)  # CPU seconds that must not be counted
        block = np.ones(256 * 2 ** 20 // 8)  # 256 MiB, touched, freed before the pause ends
        del block
        record.release_free_memory()
else:
    block = np.ones(256 * 2 ** 20 // 8)
    del block
time.sleep(0.3)
meter.stop()
print(json.dumps({"wall": meter.wall_s, "cpu": meter.cpu_user_s + meter.cpu_sys_s, "rows": meter.rows,
                  "peak": meter.peak_rss_mb, "lifetime": record.peak_rss_mb()}))
"""


def _meter_in_a_fresh_process(mode):
    # Through a shell that forks (the `; exit` keeps bash from exec-ing Python in its own place):
    # Linux carries the peak RSS across exec, and a child exec-ed straight from this pytest process
    # would start with pytest's peak as its own.
    proc = subprocess.run(["bash", "-c", '"$0" -c "$1" "$2" "$3"; exit $?', sys.executable,
                           _METER_SCRIPT, str(REPO), mode], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_meter_leaves_a_paused_stretch_out():
    """ResourceMeter.paused(): wall and CPU seconds, the timeline and the peak RSS leave out what
    runs inside the pause (the paired floor's epochs). In a fresh process: the peak RSS is the
    process's own."""
    r = _meter_in_a_fresh_process("pause")
    assert 0.55 < r["wall"] < 0.85, r["wall"]
    assert r["cpu"] < 0.3
    rows = r["rows"]
    times = [row[0] for row in rows]
    assert times == sorted(times) and times[-1] < 0.85  # the timeline goes on without the gap
    assert len(rows) >= 6
    cpu_on_timeline = sum(row[1] / 100 * (row[0] - prev[0]) for prev, row in zip([(0.0,)] + rows, rows))
    assert cpu_on_timeline < 0.3  # the busy pause is not on it
    assert r["peak"] < r["lifetime"] - 128  # the 256 MiB of the pause are not counted
    assert max(row[3] for row in rows) <= r["peak"] + 1


def test_meter_without_a_pause_counts_the_lifetime_peak():
    r = _meter_in_a_fresh_process("no-pause")
    assert r["peak"] == pytest.approx(r["lifetime"]) and r["peak"] > 256
    assert 0.55 < r["wall"] < 2.0


def test_floor_with_torch_matrix_products(prepared, outdir):
    """--library torch: the same GEMMs with PyTorch's tensors (its BLAS), for comparing libraries."""
    out = outdir / "floor-torch-mlp2.json"
    r = bench(env_python("torch"), "floor", "--library", "torch", "--network", "mlp2", "--data",
              prepared, "--out", out, "--train-size", 300, "--test-size", 100, "--epochs", 2,
              "--no-progress", "--threads", 2)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["status"] == "ok" and res["job"]["framework"] == "floor"
    assert res["params"]["gemm_library"] == "torch"
    assert res["environment"]["framework_version"].startswith("torch ")
    assert len(res["metrics"]["epoch_times_s"]) == 2 and res["metrics"]["wall_time_s"] > 0
    assert "GEMM floor (torch " in r.stdout


def test_floor_with_torch_needs_the_torch_environment(tmp_path):
    python = env_python("dezero")  # an environment without PyTorch
    r = bench(python, "floor", "--library", "torch", "--network", "mlp1", "--out",
              tmp_path / "x.json", "--train-size", 100, "--test-size", 100)
    assert r.returncode == 4 and ".venvs/torch/bin/python" in r.stderr, r.stderr
    assert not (tmp_path / "x.json").exists()


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("args, allowed", [
    (("--framework", "caffe", "--network", "mlp1"), ("stucrs", "dezero", "tensorflow", "torch")),
    (("--framework", "torch", "--network", "mlp9"), ("mlp1", "mlp2", "cnn")),
    (("--framework", "torch", "--network", "mlp1", "--device", "tpu"), ("cpu", "gpu")),
])
def test_unknown_names_list_allowed_values(args, allowed, tmp_path):
    r = bench(sys.executable, "run", *args, "--data", "x.npz", "--out", tmp_path / "x.json")
    assert r.returncode == 2
    for name in allowed:
        assert name in r.stderr, r.stderr
    assert not (tmp_path / "x.json").exists()


def test_framework_not_in_this_environment(prepared, tmp_path):
    missing = next((fw for fw in ("dezero", "tensorflow") if _importable(fw) is False), None)
    if missing is None:
        pytest.skip("every framework importable here")
    r = bench(sys.executable, "run", "--framework", missing, "--network", "mlp1", "--data",
              prepared, "--out", tmp_path / "x.json")
    assert r.returncode == 4
    assert ".venvs/%s/bin/python" % missing in r.stderr, r.stderr


def test_missing_data_is_a_clear_error(tmp_path):
    r = bench(sys.executable, "floor", "--network", "mlp1", "--out", tmp_path / "x.json",
              "--data", tmp_path / "nope.npz")
    assert r.returncode != 0 and "nope.npz" in r.stderr


def _importable(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------- profile


@pytest.mark.parametrize("framework", ["stucrs", "dezero"])
def test_profile_splits_the_run_by_function(framework, prepared, tmp_path):
    out = tmp_path / ("cnn-%s.csv" % framework)
    r = bench(env_python(framework), "profile", "--framework", framework, "--network", "cnn",
              "--data", prepared, "--out", out, "--train-size", 256, "--test-size", 128,
              "--batch-size", 64, "--epochs", 1, "--no-progress", "--threads", 2)
    assert r.returncode == 0, r.stderr[-4000:]
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["network", "framework", "phase", "name", "calls", "total_s",
                             "per_call_us", "share"]
    by = {(row["phase"], row["name"]): row for row in rows}
    # 4 training steps and 2 test batches: the model's functions, each outermost call counted once
    assert int(by[("forward", "Conv2d")]["calls"]) == 6 and int(by[("backward", "Conv2d")]["calls"]) == 4
    assert int(by[("forward", "Pooling")]["calls"]) == 6
    assert int(by[("forward", "Linear")]["calls"]) == 12 and int(by[("backward", "Linear")]["calls"]) == 8
    assert int(by[("update", "SGD")]["calls"]) == 4
    assert rows[-1]["phase"] == "other"
    timed = [float(row["total_s"]) for row in rows[:-1]]
    assert timed == sorted(timed, reverse=True)
    assert sum(float(row["share"]) for row in rows) == pytest.approx(1.0, abs=0.01)
    md = out.with_suffix(".md").read_text()
    assert md.startswith("# Profile of cnn-%s-cpu-r0: 1 epoch(s), 256 training examples" % framework)
    assert "| forward | Conv2d | 6 |" in md and md in r.stdout


@pytest.mark.parametrize("args, message", [
    (("--framework", "torch"), "stucrs"),
    (("--framework", "stucrs", "--device", "gpu"), "CPU runs only"),
])
def test_profile_usage_errors(args, message, tmp_path):
    r = bench(sys.executable, "profile", *args, "--network", "mlp1", "--data", "x.npz",
              "--out", tmp_path / "x.csv")
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "x.csv").exists()


def test_op_timer_counts_outermost_calls_and_restores_the_classes():
    import stucrs
    import stucrs.functions as F
    from stucrs import optimizers
    from workflow.bench.profile import OpTimer

    call, linear_backward = stucrs.Function.__call__, F.Linear.backward
    model = stucrs.models.MLP((4, 3))
    opt = optimizers.SGD(0.1).setup(model)
    x = np.ones((2, 5), dtype=np.float32)
    with OpTimer(stucrs) as timer:
        y = model(x)
        loss = F.sum(y * y)
        loss.backward(create_graph=True)  # backward builds Functions (Linear, Mul, ...): inside, not counted
        opt.update()
        rows = timer.rows(1.0, "mlp", "stucrs")
    assert stucrs.Function.__call__ is call and F.Linear.backward is linear_backward
    calls = {(r["phase"], r["name"]): r["calls"] for r in rows}
    assert calls[("forward", "Linear")] == 2 and calls[("forward", "Sigmoid")] == 1  # MLP: sigmoid, as in DeZero
    assert calls[("forward", "Mul")] == 1 and calls[("forward", "Sum")] == 1
    assert calls[("backward", "Linear")] == 2 and calls[("update", "SGD")] == 1
    assert ("forward", "MatMul") not in calls  # only built inside Linear.backward
    assert rows[-1]["phase"] == "other" and rows[-1]["total_s"] >= 0


# --------------------------------------------------------------------------- gap


GAP_VARIANTS = ["stucrs", "free bias", "free relu", "free bias+relu", "free gather",
                "free bias+relu+gather", "floor"]


def run_gap(prepared, out, network, train_size, rounds, steps):
    """``gap`` for ``network`` on the first ``train_size`` examples: (its result, the CSV's rows)."""
    r = bench(env_python("stucrs"), "gap", "--network", network, "--data", prepared, "--out", out,
              "--train-size", train_size, "--test-size", 100, "--rounds", rounds, "--steps", steps,
              "--threads", 2)
    assert r.returncode == 0, r.stderr[-4000:]
    return r, list(csv.DictReader(out.open()))


def check_rows_against_the_floor(rows, rounds, steps):
    """Every gap row was timed (rounds x steps) and is set against the floor and StuCrs's real step
    of the same run: its ratio to the floor and its saving follow from the rows' own times."""
    by = {row["variant"]: row for row in rows}
    assert float(by["floor"]["over_floor"]) == 1.0 and float(by["stucrs"]["saving_us"]) == 0.0
    floor_us = float(by["floor"]["per_step_us"])
    for row in rows:
        per_step = float(row["per_step_us"])
        assert per_step > 0 and row["rounds"] == str(rounds) and row["steps"] == str(steps)
        assert float(row["over_floor"]) == pytest.approx(per_step / floor_us, rel=1e-3)
        assert float(row["saving_us"]) == pytest.approx(
            float(by["stucrs"]["per_step_us"]) - per_step, abs=0.2)


def test_gap_times_every_variant_against_the_floor(prepared, tmp_path):
    out = tmp_path / "gap" / "mlp1.csv"
    r, rows = run_gap(prepared, out, "mlp1", train_size=500, rounds=2, steps=4)
    assert list(rows[0]) == ["network", "variant", "free", "per_step_us", "over_floor", "saving_us",
                             "rounds", "steps"]
    assert [row["variant"] for row in rows] == GAP_VARIANTS
    assert [row["free"] for row in rows] == ["nothing", "bias", "relu", "bias+relu", "gather",
                                             "bias+relu+gather", ""]
    check_rows_against_the_floor(rows, rounds=2, steps=4)
    md = out.with_suffix(".md").read_text()
    assert md.startswith("# Gap of StuCrs to the GEMM floor, mlp1: batch 100, 2 round(s) of 4 steps")
    assert "| free bias+relu |" in md and md in r.stdout
    doc = json.loads(out.with_suffix(".json").read_text())
    assert set(doc["environment"]) == ENV_KEYS and doc["environment"]["threads"] == 2
    assert doc["environment"]["data_sha256"]  # the prepared data's hashes
    assert doc["params"]["rounds"] == 2 and doc["params"]["lr"] == 1e-12  # the rate it used
    assert doc["params"]["train_size"] == 500 and "epochs" not in doc["params"]
    assert [row["variant"] for row in doc["rows"]] == GAP_VARIANTS


CNN_GAP_VARIANTS = ["stucrs", "free relu", "free pooling", "free dropout mask", "free dropout",
                    "free relu+pooling+dropout", "free relu+pooling+masking", "floor"]


def test_gap_of_the_cnn_splits_its_convolution_tail(prepared, tmp_path):
    out = tmp_path / "gap" / "cnn.csv"
    _, rows = run_gap(prepared, out, "cnn", train_size=300, rounds=1, steps=2)
    assert [row["variant"] for row in rows] == CNN_GAP_VARIANTS
    assert [row["free"] for row in rows] == ["nothing", "relu", "pooling", "mask", "dropout",
                                             "relu+pooling+dropout", "relu+pooling+masking", ""]
    # each variant was timed and set against the floor of the same process (which is faster is
    # the benchmark's finding, not the test's: a busy machine may reorder two short blocks)
    check_rows_against_the_floor(rows, rounds=1, steps=2)
    md = out.with_suffix(".md").read_text()
    assert md.startswith("# Gap of StuCrs to the GEMM floor, cnn: batch 128")
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["mask_bound"] == doc["rows"][-2] and doc["mask_bound"]["variant"] == CNN_GAP_VARIANTS[-2]
    bound = "it takes about %.2f × the floor or more here" % doc["mask_bound"]["over_floor"]
    assert "`free relu+pooling+masking`: " in md and bound in md  # the book mask's bound, stated


def test_made_free_cnn_parts_keep_shapes_and_the_global_generator():
    import stucrs
    import stucrs.functions as F
    import stucrs.functions_conv as FC
    from stucrs.core import fast_variants
    from workflow.bench.gap import made_free

    registry = dict(fast_variants)
    adapter = types.SimpleNamespace()  # the CNN's parts leave the adapter alone
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    with made_free(adapter, stucrs, ("pooling", "dropout"), None):
        v = stucrs.Variable(x)
        y = FC.pooling(v, 2, 2)
        assert y.shape == (2, 3, 3, 3) and not y.data.any()  # made once, no work
        assert F.dropout(y, 0.5) is not None and F.dropout(v, 0.5).data is v.data  # identity
        F.sum(y).backward()
        assert v.grad.shape == x.shape
    np.random.seed(7)
    expected = np.random.rand(3)
    np.random.seed(7)
    with made_free(adapter, stucrs, ("mask",), None):
        a = F.dropout(stucrs.Variable(np.ones((4, 50), dtype=np.float32)), 0.5).data
        b = F.dropout(stucrs.Variable(np.ones((4, 50), dtype=np.float32)), 0.5).data
    assert np.array_equal(a, b) and set(np.unique(a)) == {0.0, 2.0}  # one mask, DeZero's scale
    assert np.array_equal(np.random.rand(3), expected)  # the global generator was not drawn from
    assert dict(fast_variants) == registry


def test_made_free_masking_still_draws_the_books_mask():
    """``masking``: dropout returns its input and passes the gradient through, but draws DeZero's
    mask every call: afterwards the global generator stands where the real dropout leaves it."""
    import stucrs
    import stucrs.functions as F
    from workflow.bench.gap import made_free

    x = np.arange(1.0, 601.0, dtype=np.float32).reshape(4, 150)
    np.random.seed(3)
    F.dropout(stucrs.Variable(x), 0.2)  # the real dropout (fast path): one mask of 600 draws
    after_real = np.random.rand(4)
    np.random.seed(3)
    with made_free(types.SimpleNamespace(), stucrs, ("masking",), None):
        v = stucrs.Variable(x)
        y = F.dropout(v, 0.2)
        assert y.data is x  # no product, no new array
        y.grad = stucrs.Variable(np.full_like(x, 2.0))  # backward starts from this gradient
        y.backward()
        assert np.array_equal(v.grad.data, np.full_like(x, 2.0))  # the gradient passes through
    assert np.array_equal(np.random.rand(4), after_real)  # the mask was drawn all the same


@pytest.mark.parametrize("args, rc, message", [
    (("--network", "mlp1", "--device", "gpu"), 2, "CPU runs only"),
    (("--network", "mlp1", "--rounds", "0"), 2, "must be >= 1"),
    (("--network", "mlp1", "--out", "{tmp}/x.json"), 2, "must end in .csv (the .md and .json go beside"),
])
def test_gap_usage_errors(args, rc, message, tmp_path):
    args = [a.format(tmp=tmp_path) for a in args]
    out = [] if "--out" in args else ["--out", tmp_path / "x.csv"]
    r = bench(sys.executable, "gap", *args, "--data", "x.npz", *out)
    assert r.returncode == rc and message in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())


def test_profile_out_must_be_the_csv(tmp_path):
    # X.md goes beside X.csv: an --out of X.md would be overwritten by the table it names
    r = bench(sys.executable, "profile", "--framework", "stucrs", "--network", "mlp1", "--data", "x.npz",
              "--out", tmp_path / "x.md")
    assert r.returncode == 2 and "must end in .csv (the .md go beside it)" in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())


def test_gap_needs_a_full_batch_and_writes_nothing(prepared, tmp_path):
    r = bench(env_python("stucrs"), "gap", "--network", "mlp1", "--data", prepared,
              "--out", tmp_path / "x.csv", "--train-size", 50)
    assert r.returncode == 4, r.stderr
    assert "one full batch" in r.stderr and "--train-size" in r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.iterdir())


def test_made_free_replaces_the_parts_through_the_seam_and_restores_them():
    """The gap's free parts go in through stucrs.fast.replaced (no StuCrs name is patched) and
    the fixed batch through the harness's own adapter; all is back after the block, even on error."""

    import stucrs
    import stucrs.functions as F
    from stucrs.core import fast_variants
    from workflow.bench import gap
    from workflow.bench.gap import made_free

    assert "setattr" not in inspect.getsource(gap) and "_gather" not in inspect.getsource(gap)
    registry = dict(fast_variants)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    W = stucrs.Parameter(rng.standard_normal((4, 5)).astype(np.float32))
    b = stucrs.Parameter(rng.standard_normal(5).astype(np.float32))

    class Adapter:  # the harness adapter's one method the gap replaces
        def _batches(self, dataset, batch_size, index):
            return iter([("gathered", index)])

    adapter = Adapter()
    fixed = (np.zeros((2, 2)), np.zeros(2, dtype=np.int64))

    def gb_of(y):
        b.cleargrad()
        F.sum(y * stucrs.Variable(np.arange(15, dtype=np.float32).reshape(3, 5))).backward()
        return b.grad.data

    with made_free(adapter, stucrs, ("bias",), fixed):
        y = F.linear(x, W, b)
        assert np.array_equal(y.data, x @ W.data)  # no + b
        assert np.array_equal(gb_of(y), np.arange(5, dtype=np.float32))  # row 0 of gy, no sum
        assert np.array_equal(F.relu(x).data, np.maximum(x, 0))  # the other parts untouched
    with made_free(adapter, stucrs, ("relu", "gather"), fixed):
        v = stucrs.Variable(x)
        y = F.relu(v)
        assert np.array_equal(y.data, x)  # identity: the negatives stay
        F.sum(y).backward()
        assert np.array_equal(v.grad.data, np.ones_like(x))
        batch = next(adapter._batches(None, 2, [5, 4, 3]))
        assert batch is fixed  # handed out, not gathered
        assert np.array_equal(F.linear(x, W, b).data, x @ W.data + b.data)
    with pytest.raises(RuntimeError), made_free(adapter, stucrs, ("bias", "relu", "gather"), fixed):
        raise RuntimeError("a failing block")
    assert dict(fast_variants) == registry
    assert next(adapter._batches(None, 2, [1])) == ("gathered", [1])
    y = F.linear(x, W, b)
    assert np.array_equal(y.data, x @ W.data + b.data)
    assert np.array_equal(gb_of(y), np.arange(15, dtype=np.float32).reshape(3, 5).sum(axis=0))


def test_gap_measures_each_variant_inside_its_patch(prepared, monkeypatch):
    # each block is timed with exactly its parts made free; only full batches are timed (250
    # examples, batch 100: the 50 left over never form a step); and a learning rate of 1e-12 moves
    # no weight by more than 1e-9 over the whole measurement, while each step still updates them
    import stucrs
    import stucrs.functions as F
    from stucrs.core import fast_variants
    from workflow.bench import gap, networks as nets
    from workflow.bench.adapters import stucrs_adapter
    from workflow.bench.data import load

    spec = nets.get_spec("mlp1")
    arrays = load(prepared, 250, 100)
    adapter = stucrs_adapter.Adapter(spec, nets.init_weights(spec, 0), device="cpu", lr=0.01, seed=0)
    adapter.set_data(arrays["x_train"], arrays["t_train"], arrays["x_test"], arrays["t_test"])
    before = [p.data.copy() for p in adapter.model.params()]
    originals = {"bias": fast_variants[F.Linear], "relu": fast_variants[F.ReLU]}
    free_in_block, batch_sizes = [], []

    def recording_block(step, steps):  # which parts are replaced while this block is timed
        now = {"bias": fast_variants[F.Linear], "relu": fast_variants[F.ReLU]}
        parts = [part for part in ("bias", "relu") if now[part] is not originals[part]]
        if "_batches" in adapter.__dict__:
            parts.append("gather")
        free_in_block.append(tuple(parts))
        return real_block(step, steps)

    def recording_epoch(perm, batch_size):
        for loss, acc, n in real_epoch(perm, batch_size):
            batch_sizes.append(n)
            yield loss, acc, n

    real_block, real_epoch = gap._timed_block, adapter.train_epoch
    monkeypatch.setattr(gap, "_timed_block", recording_block)
    adapter.train_epoch = recording_epoch
    per_round = gap.measure(adapter, stucrs, spec, np.arange(250), 100, rounds=1, steps=3, seed=0)
    assert free_in_block == [parts or () for _, parts in gap.VARIANTS]  # floor: nothing patched
    assert len(batch_sizes) == gap.WARMUP_STEPS + 3 * 6 and set(batch_sizes) == {100}
    assert sorted(per_round) == sorted(GAP_VARIANTS)
    assert all(len(times) == 1 and times[0] > 0 for times in per_round.values())
    assert adapter.optimizer.lr == gap.STILL_LR
    moved = [float(np.abs(p.data - b).max()) for p, b in zip(adapter.model.params(), before)]
    assert max(moved) <= 1e-9 and max(moved) > 0, moved


def test_batch_larger_than_the_data_is_refused(prepared, tmp_path):
    out = tmp_path / "r.json"
    r = bench(env_python("stucrs"), "run", "--framework", "stucrs", "--network", "mlp1", "--data", prepared,
              "--out", out, "--epochs", "1", "--train-size", "50", "--test-size", "50", "--batch-size", "100")
    assert r.returncode != 0
    assert "batch size 100 is larger than the 50 training examples" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr and not out.exists()


def test_unreadable_mnist_file_is_named(tmp_path, monkeypatch):
    """An MNIST file that cannot be opened (mode 000 for a normal user) gives a named error in the
    API and in the harness, not a raw PermissionError (root reads anything, so open() is patched)."""
    import builtins
    import gzip

    import stucrs.datasets as ds
    from workflow.bench import data as bench_data

    if MNIST_DIR is None or not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(SKIP_REASON)
    target = str(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    real_open, real_gzip_open = builtins.open, gzip.open

    def guarded(path, *a, **kw):
        if str(path) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    def guarded_gzip(path, *a, **kw):
        if str(path) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return real_gzip_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded)
    with pytest.raises(ds.MNISTError, match=r"permission denied.*chmod u\+r"):
        ds.load_idx(target)
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(gzip, "open", guarded_gzip)
    with pytest.raises(bench_data.DataError, match=r"permission denied.*chmod u\+r"):
        bench_data.read_raw(MNIST_DIR)


def test_malloc_record_counts_only_mallocs_own_settings(monkeypatch):
    for k in [k for k in os.environ if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(k)
    assert record.malloc_info() == "default"
    for k, v in MALLOC_TUNED_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcap_mask=0")  # not malloc's: still "tuned"
    assert record.malloc_info() == "tuned: " + ", ".join("%s=%s" % kv for kv in MALLOC_TUNED_ENV.items())
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcap_mask=0:glibc.malloc.arena_max=1")
    assert record.malloc_info().startswith("custom: ") and "glibc.malloc.arena_max=1" in record.malloc_info()


def test_malloc_environment_replaces_only_mallocs_settings():
    # the restarted harness gets the wanted malloc variables; other variables and glibc's other
    # tunables pass through, an inherited malloc setting does not
    from workflow.bench import cli
    environ = {"PATH": "/bin", "MALLOC_ARENA_MAX_": "2",
               "GLIBC_TUNABLES": "glibc.cpu.hwcap_mask=0:glibc.malloc.arena_max=1"}
    args = cli.build_parser().parse_args(["floor", "--network", "mlp1", "--out", "x.json"])
    assert cli.malloc_environment(args, environ) == dict(
        PATH="/bin", GLIBC_TUNABLES="glibc.cpu.hwcap_mask=0", **MALLOC_TUNED_ENV)
    args.malloc = "default"
    assert cli.malloc_environment(args, environ) == {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.cpu.hwcap_mask=0"}
