"""The GEMM-only floor: the matrix products of a training run, and nothing else.

For the same network, batch size, sizes and number of steps as ``run``, time only the GEMMs that
any framework has to do, with NumPy (CuPy with ``--device gpu``):

* per dense layer and training step: forward ``x @ W``, weight gradient ``x.T @ gy`` and input
  gradient ``gy @ W.T`` (skipped for the network's first layer, whose input needs no gradient);
* CNN: the conv as its im2col GEMM ``col @ W`` with ``col`` (N*OH*OW, C*KH*KW), its weight gradient
  ``col.T @ gy`` (its input gradient skipped: first layer), then the dense layers as above;
* test pass: the forward GEMMs of each test batch.

The operands are random float32 arrays allocated once per batch size, outside the timed region.
Written as a result JSON of framework ``floor`` (no losses).

``run --paired-floor-epochs K`` times the same products inside the training run's own process
(:func:`paired_floor_epoch`, one floor epoch right after each of the run's last K epochs, outside
the timed region): a slow phase of a shared machine then slows an epoch and its floor epoch alike,
and the run's ``over_paired_floor`` (the median over the pairs of epoch / floor epoch) is the ratio
to the floor at the machine's speed of that moment.

``--library torch`` times the same products with PyTorch's tensors instead (run it with the torch
environment's Python): the two floors side by side say how much of a gap between StuCrs and PyTorch
is only their matrix-product libraries (OpenBLAS under NumPy, MKL / oneDNN under PyTorch).
"""

import sys
import time
from pathlib import Path

from . import networks, record
from .data import DataError
from .results import (empty_metrics, job_of, no_gpu_result, ok_result, progress_bar,
                      resolve_params, write_result)


def gemm_shapes(spec, n):
    """[(kind, M, K, N)] of one training step for batch size ``n``: ``(M, K) @ (K, N)``."""
    shapes = []
    first = True
    if spec.kind == "cnn":
        c, oh, ow = spec.hidden[0], 28 - spec.kernel + 1, 28 - spec.kernel + 1
        p, k = n * oh * ow, 1 * spec.kernel ** 2
        shapes += [("fwd", p, k, c), ("grad_W", k, p, c)]
        first = False
    for n_in, n_out in spec.dense_sizes():
        shapes += [("fwd", n, n_in, n_out), ("grad_W", n_in, n, n_out)]
        if not first:
            shapes.append(("grad_x", n, n_out, n_in))
        first = False
    return shapes


class _Operands:
    """Random operands for one batch size; ``train()`` / ``test()`` do one step's GEMMs."""

    def __init__(self, to_array, spec, n, rng):
        def rand(*shape):
            return to_array(rng.standard_normal(shape, dtype="float32"))

        self.train_ops, self.test_ops = [], []
        for kind, M, K, N in gemm_shapes(spec, n):
            if kind == "fwd":  # x (M, K) @ W (K, N)
                a, b = rand(M, K), rand(K, N)
                self.train_ops.append((a, b))
                self.test_ops.append((a, b))
            elif kind == "grad_W":  # x.T @ gy: x stored (batch, in) = (K, M), gy (K, N)
                a, b = rand(K, M), rand(K, N)
                self.train_ops.append((a.T, b))
            else:  # gy (M, K) @ W.T, W stored (in, out) = (N, K)
                a, b = rand(M, K), rand(N, K)
                self.train_ops.append((a, b.T))

    def train(self):
        for a, b in self.train_ops:
            a @ b

    def test(self):
        for a, b in self.test_ops:
            a @ b


def _plan(to_array, spec, bs, n_train, n_test, seed):
    """(operands per batch size, train batch sizes, test batch sizes) of one epoch."""
    import numpy as np
    rng = np.random.default_rng(seed)
    ops = {}
    for n in {bs, n_train % bs or bs, n_test % bs or bs, min(bs, n_train), min(bs, n_test)}:
        ops[n] = _Operands(to_array, spec, n, rng)
    train_batches = [min(bs, n_train - i) for i in range(0, n_train, bs)]
    test_batches = [min(bs, n_test - i) for i in range(0, n_test, bs)]
    return ops, train_batches, test_batches


def _epoch(ops, train_batches, test_batches, sync, after_batch=None):
    """One epoch of the floor's GEMMs (training steps, then the test pass); its seconds."""
    t0 = time.perf_counter()
    for n in train_batches:
        ops[n].train()
        if after_batch is not None:
            after_batch()
    for n in test_batches:
        ops[n].test()
        if after_batch is not None:
            after_batch()
    sync()
    return time.perf_counter() - t0


def paired_floor_epoch(spec, params, seed):
    """Seconds of one floor epoch with this process's NumPy, for ``run``'s paired floor.

    The same products as ``floor`` for the run's network, batch size and data sizes (``params``
    after the data is loaded). The operands are made for this epoch and freed after it, so that
    they are not part of the run's memory between its floor epochs.
    """
    import numpy as np
    ops, train_batches, test_batches = _plan(np.asarray, spec, params["batch_size"],
                                             params["train_size"], params["test_size"], seed)
    seconds = _epoch(ops, train_batches, test_batches, lambda: None)
    del ops
    record.release_free_memory()
    return seconds


def _cupy_status():
    from .adapters._dezero_like import cupy_status
    return cupy_status()


def _numpy_backend(args):
    """(to_array, version, sync, why): NumPy on the CPU, CuPy on the GPU; to_array None without one."""
    import numpy as np
    if args.device != "gpu":
        return np.asarray, np.__version__, (lambda: None), ""
    ok, why = _cupy_status()
    if not ok:
        return None, np.__version__, None, why
    import cupy
    return cupy.asarray, "cupy " + cupy.__version__, cupy.cuda.Device().synchronize, ""


def _torch_backend(args):
    """The same for PyTorch's tensors (``--library torch``, the torch environment)."""
    try:
        import torch
    except ImportError as exc:
        from .adapters import FrameworkMissing
        raise FrameworkMissing(
            "--library torch needs PyTorch, which %s cannot import (%s); run the floor with the torch "
            "environment, e.g. .venvs/torch/bin/python -m workflow.bench floor --library torch ..."
            % (sys.executable, exc)) from exc
    torch.set_num_threads(int(args.threads))
    version = "torch " + torch.__version__
    if args.device != "gpu":
        return torch.from_numpy, version, (lambda: None), ""
    if not torch.cuda.is_available():
        return None, version, None, "torch %s sees no CUDA device" % torch.__version__
    return (lambda a: torch.from_numpy(a).cuda()), version, torch.cuda.synchronize, ""


def run_floor(args):
    import numpy as np

    harness_t0 = record.process_start_time()
    spec = networks.get_spec(args.network)
    params = resolve_params(args, spec)
    job = job_of(args, "floor")
    params["gemm_library"] = args.library
    if args.library == "torch":
        to_array, version, sync, why = _torch_backend(args)
    else:
        to_array, version, sync, why = _numpy_backend(args)
    if to_array is None:
        message = "no GPU for %s: %s; GPU variant skipped" % (job["id"], why)
        write_result(args.out, no_gpu_result(args, job, params, message, version))
        print("%s: status no_gpu (%s); wrote %s" % (job["id"], why, args.out))
        return 0

    n_train = args.train_size or 60000
    n_test = args.test_size or 10000
    if args.data:  # the sizes of the prepared data, when given
        if not Path(args.data).is_file():
            raise DataError("prepared data %s not found" % args.data)
        from .data import check_prepared
        check_prepared(args.data)  # a truncated file is named, not a zip error
        with np.load(args.data, allow_pickle=False) as z:
            n_train = min(n_train, len(z["t_train"]))
            n_test = min(n_test, len(z["t_test"]))
    params["train_size"], params["test_size"] = n_train, n_test
    epochs, bs = params["epochs"], params["batch_size"]

    ops, train_batches, test_batches = _plan(to_array, spec, bs, n_train, n_test, args.seed)

    m = empty_metrics()
    first_batch = []
    m["start_unix_s"] = time.time()
    meter = record.ResourceMeter(args.sample_interval).start()
    try:
        for epoch in range(1, epochs + 1):
            bar = progress_bar(args, len(train_batches) + len(test_batches),
                               "%s epoch %d/%d" % (job["id"], epoch, epochs))
            try:
                def after_batch():
                    if not first_batch:
                        sync()
                        first_batch.append(time.time() - harness_t0)
                    bar.update(1)
                m["epoch_times_s"].append(_epoch(ops, train_batches, test_batches, sync, after_batch))
            finally:
                bar.close()
    finally:
        meter.stop()
        m["end_unix_s"] = time.time()
    ttfb = first_batch[0] if first_batch else None

    result = ok_result(job, params, m, meter, ttfb, version, args)
    write_result(args.out, result, meter.rows)
    print("%s: GEMM floor (%s) wall %.2f s, cpu %.2f s; wrote %s"
          % (job["id"], version, m["wall_time_s"], m["cpu_time_s"], args.out))
    return 0
