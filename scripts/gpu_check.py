#!/usr/bin/env python3
"""GPU check: StuCrs on CuPy against StuCrs on NumPy, then the harness's GPU variants on a tiny subset.

    python3 scripts/gpu_check.py [--frameworks stucrs,dezero,tensorflow,torch] [--networks mlp1,cnn]
                                 [--data resources/mnist_prepared.npz] [--skip-bench]

Runs with any python3 (standard library only): each step runs in the environment it needs
(.venvs/stucrs for the CuPy check, .venvs/FRAMEWORK for the benchmark runs; build them with
``python3 envs/build.py stucrs dezero tensorflow torch --gpu``).

1. One MLP step (784-100-10, ReLU, softmax cross entropy, SGD) forward and backward with StuCrs on
   CuPy and on NumPy from the same weights and batch; loss, gradients and updated weights must agree.
2. ``python -m workflow.bench run --device gpu`` for each framework and network on a few hundred
   examples and one epoch; each result JSON must say status "ok".

Where no GPU is present (``nvidia-smi`` lists none) it prints "no GPU: skipped ..." and exits 0.
Exit status: 0 passed or skipped, 1 a check failed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("stucrs", "dezero", "tensorflow", "torch")
SKIP_MESSAGE = ("no GPU: skipped the StuCrs CuPy-vs-NumPy MLP step and the GPU benchmark variants "
                "(%s)")


def log(msg):
    print("[gpu_check] " + msg, flush=True)


def gpu_status():
    """(True, description) when nvidia-smi lists a GPU, else (False, why not)."""
    if os.environ.get("STUCRS_GPU_CHECK_FORCE_NO_GPU"):
        return False, "STUCRS_GPU_CHECK_FORCE_NO_GPU is set"
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False, "nvidia-smi not found"
    try:
        res = subprocess.run([exe, "-L"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, "nvidia-smi failed: %s" % exc
    gpus = [line for line in res.stdout.splitlines() if line.startswith("GPU")]
    if res.returncode != 0 or not gpus:
        return False, "nvidia-smi lists no GPU"
    return True, "; ".join(gpus)


def env_python(name):
    bindir = "Scripts" if os.name == "nt" else "bin"
    return ROOT / ".venvs" / name / bindir / ("python.exe" if os.name == "nt" else "python")


# --------------------------------------------------------------------------- step 1 (inner)


def mlp_check(batch=32, hidden=100, lr=0.1, seed=0):
    """Runs inside .venvs/stucrs: one MLP step on NumPy and on CuPy, compared. Returns 0 or 1."""
    import numpy as np

    try:
        import cupy
    except Exception as exc:  # noqa: BLE001
        log("FAIL: CuPy cannot be imported in %s (%s: %s); build the GPU variant: "
            "python3 envs/build.py stucrs --gpu" % (sys.executable, type(exc).__name__, exc))
        return 1
    import stucrs
    import stucrs.functions as F
    from stucrs import Parameter, Variable, cuda

    if not cuda.gpu_enable:
        log("FAIL: stucrs.cuda.gpu_enable is False although a GPU is present (%s)"
            % getattr(cuda, "_cupy_error", None))
        return 1

    rng = np.random.default_rng(seed)
    sizes = [(784, hidden), (hidden, 10)]
    weights = []
    for fan_in, fan_out in sizes:
        weights.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(1.0 / fan_in)).astype(np.float32))
        weights.append(np.zeros(fan_out, dtype=np.float32))
    x = rng.random((batch, 784), dtype=np.float32)
    t = rng.integers(0, 10, size=batch).astype(np.int64)

    def step(xp):
        params = [Parameter(xp.array(w, copy=True)) for w in weights]
        xv, tv = Variable(xp.asarray(x)), xp.asarray(t)
        h = F.relu(F.linear(xv, params[0], params[1]))
        y = F.linear(h, params[2], params[3])
        loss = F.softmax_cross_entropy(y, tv)
        for p in params:
            p.cleargrad()
        loss.backward()
        grads = [cuda.as_numpy(p.grad.data) for p in params]
        for p in params:
            p.data -= lr * p.grad.data
        return float(cuda.as_numpy(loss.data)), grads, [cuda.as_numpy(p.data) for p in params]

    t0 = time.perf_counter()
    loss_cpu, grads_cpu, new_cpu = step(np)
    t1 = time.perf_counter()
    loss_gpu, grads_gpu, new_gpu = step(cupy)
    cupy.cuda.Device().synchronize()
    t2 = time.perf_counter()

    failures = []
    if not np.isclose(loss_cpu, loss_gpu, rtol=1e-4, atol=1e-5):
        failures.append("loss %r (numpy) != %r (cupy)" % (loss_cpu, loss_gpu))
    names = ["W1", "b1", "W2", "b2"]
    for name, gc, gg in zip(names, grads_cpu, grads_gpu):
        if gc.shape != gg.shape or not np.allclose(gc, gg, rtol=1e-3, atol=1e-5):
            failures.append("grad %s differs (max abs diff %.3g)" % (name, float(np.max(np.abs(gc - gg)))))
    for name, wc, wg in zip(names, new_cpu, new_gpu):
        if not np.allclose(wc, wg, rtol=1e-4, atol=1e-6):
            failures.append("updated %s differs" % name)
    log("stucrs %s, cupy %s, device %s" % (getattr(stucrs, "__version__", "?"), cupy.__version__,
                                          cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()))
    log("MLP step: loss numpy %.6f, cupy %.6f (numpy %.3f s, cupy %.3f s incl. warm-up)"
        % (loss_cpu, loss_gpu, t1 - t0, t2 - t1))
    if failures:
        for f in failures:
            log("FAIL: " + f)
        return 1
    log("OK: StuCrs on CuPy matches StuCrs on NumPy (loss, 4 gradients, SGD update)")
    return 0


# --------------------------------------------------------------------------- step 2


def ensure_data(data, mnist_dir):
    if data.is_file():
        return True
    if mnist_dir and Path(mnist_dir).is_dir():
        py = env_python("workspace")
        py = py if py.exists() else Path(sys.executable)
        cmd = [str(py), "-m", "workflow.bench", "prepare", "--mnist-dir", str(mnist_dir), "--out", str(data)]
        log("$ " + " ".join(cmd))
        if subprocess.run(cmd, cwd=str(ROOT)).returncode == 0 and data.is_file():
            return True
    log("FAIL: no prepared data at %s; run the pipeline's prepare step, or pass --data PATH "
        "(or --mnist-dir DIR holding the four MNIST .gz files)" % data)
    return False


def bench_runs(args):
    data = Path(args.data) if Path(args.data).is_absolute() else ROOT / args.data
    if not ensure_data(data, args.mnist_dir):
        return 1
    out_dir = Path(args.out_dir) if Path(args.out_dir).is_absolute() else ROOT / args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for fw in args.frameworks:
        py = env_python(fw)
        if not py.exists():
            log("FAIL: %s: environment not built (python3 envs/build.py %s --gpu)" % (fw, fw))
            failed.append(fw)
            continue
        for net in args.networks:
            job = "%s-%s-gpu-r0" % (net, fw)
            out = out_dir / (job + ".json")
            cmd = [str(py), "-m", "workflow.bench", "run", "--framework", fw, "--device", "gpu",
                   "--network", net, "--data", str(data), "--out", str(out), "--epochs", "1",
                   "--train-size", str(args.train_size), "--test-size", str(args.test_size),
                   "--no-progress"]
            log("$ " + " ".join(cmd))
            t0 = time.perf_counter()
            try:
                rc = subprocess.run(cmd, cwd=str(ROOT), timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            try:
                rec = json.loads(out.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                rec = {}
            status = rec.get("status", "no result")
            wall = (rec.get("metrics") or {}).get("wall_time_s")
            acc = ((rec.get("metrics") or {}).get("test_acc") or [None])[-1]
            ok = rc == 0 and status == "ok"
            log("%s %s: exit %s, status %s, wall %s s, test acc %s (%.1f s)%s"
                % ("OK  " if ok else "FAIL", job, rc, status, wall, acc, time.perf_counter() - t0,
                   "" if ok else " " + str(rec.get("message", ""))))
            if not ok:
                failed.append(job)
    if failed:
        log("FAIL: %s" % ", ".join(failed))
        return 1
    return 0


def csv_list(value, allowed=None):
    items = [x.strip() for x in value.split(",") if x.strip()]
    if allowed:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise argparse.ArgumentTypeError("unknown: %s (choose from %s)" % (", ".join(bad), ", ".join(allowed)))
    return items


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frameworks", type=lambda v: csv_list(v, FRAMEWORKS), default=list(FRAMEWORKS))
    ap.add_argument("--networks", type=csv_list, default=["mlp1", "cnn"])
    ap.add_argument("--data", default="resources/mnist_prepared.npz")
    ap.add_argument("--mnist-dir", default="resources/mnist",
                    help="raw MNIST used to prepare --data when it is missing")
    ap.add_argument("--out-dir", default="results/gpu_check")
    ap.add_argument("--train-size", type=int, default=512)
    ap.add_argument("--test-size", type=int, default=256)
    ap.add_argument("--timeout", type=int, default=600, help="seconds per benchmark run")
    ap.add_argument("--skip-bench", action="store_true", help="only the CuPy-vs-NumPy MLP step")
    ap.add_argument("--mlp-check", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.mlp_check:  # inner mode, run by the outer one inside .venvs/stucrs
        return mlp_check()

    present, detail = gpu_status()
    if not present:
        print(SKIP_MESSAGE % detail, flush=True)
        return 0
    log("GPU: " + detail)

    py = env_python("stucrs")
    if not py.exists():
        log("FAIL: .venvs/stucrs is not built: python3 envs/build.py stucrs --gpu")
        return 1
    rc = subprocess.run([str(py), str(Path(__file__).resolve()), "--mlp-check"], cwd=str(ROOT)).returncode
    if rc != 0:
        return 1
    if args.skip_bench:
        log("benchmark runs skipped (--skip-bench)")
        return 0
    return bench_runs(args)


if __name__ == "__main__":
    sys.exit(main())
