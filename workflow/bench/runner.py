"""The timed training loop of ``run`` (the result record's helpers are in ``results``).

Imported by the CLI only after the thread variables are set.
"""

import math
import statistics
import sys
import time

from . import NonFiniteLoss, floor, networks, record
from .data import DataError, load
from .results import (RunningMean, data_sha256, empty_metrics, job_of, no_gpu_result,  # noqa: F401
                      ok_result, progress_bar, resolve_params, write_result)


def run(args):
    from . import adapters

    harness_t0 = record.process_start_time()
    spec = networks.get_spec(args.network)
    params = resolve_params(args, spec)
    job = job_of(args, args.framework)
    mod = adapters.load(args.framework)
    if hasattr(mod, "configure"):
        mod.configure(args.device, args.threads)

    if args.device == "gpu":
        ok, why = mod.gpu_status()
        if not ok:
            message = "no GPU for %s: %s; GPU variant skipped" % (job["id"], why)
            write_result(args.out, no_gpu_result(args, job, params, message, mod.version()))
            print("%s: status no_gpu (%s); wrote %s" % (job["id"], why, args.out))
            return 0

    adapter, perms = prepare_adapter(args, mod, spec, params)
    n_train, n_test = params["train_size"], params["test_size"]
    epochs, batch_size = params["epochs"], params["batch_size"]
    # run --paired-floor-epochs K: the last K training epochs are each followed by one floor
    # epoch, outside the timed region (not before the first batch: that would warm the process
    # up and delay it, unlike the other frameworks' runs)
    paired = min(args.paired_floor_epochs, epochs) if args.device == "cpu" else 0

    n_train_b = networks.n_batches(n_train, batch_size)
    n_test_b = networks.n_batches(n_test, batch_size)
    m = empty_metrics()
    ttfb = None
    m["start_unix_s"] = time.time()
    meter = record.ResourceMeter(args.sample_interval).start()
    try:
        for epoch in range(1, epochs + 1):
            bar = progress_bar(args, n_train_b + n_test_b, "%s epoch %d/%d" % (job["id"], epoch, epochs))
            try:
                t_e0 = time.perf_counter()
                train = RunningMean()
                for step, (loss, acc, n) in enumerate(adapter.train_epoch(perms[epoch - 1], batch_size), 1):
                    if not math.isfinite(loss):
                        raise NonFiniteLoss("training", epoch, step, loss)
                    if ttfb is None:
                        adapter.sync()
                        ttfb = time.time() - harness_t0
                    train.add(loss, acc, n)
                    bar.update(1)
                    if step % 50 == 0:
                        bar.set_postfix_str("loss %.4f" % train.means()[0])
                test = RunningMean()
                for step, (loss, acc, n) in enumerate(adapter.test_epoch(batch_size), 1):
                    if not math.isfinite(loss):
                        raise NonFiniteLoss("test", epoch, step, loss)
                    test.add(loss, acc, n)
                    bar.update(1)
                adapter.sync()
                m["epoch_times_s"].append(time.perf_counter() - t_e0)
            finally:
                bar.close()
            for key, value in zip(("train_loss", "train_acc"), train.means()):
                m[key].append(value)
            for key, value in zip(("test_loss", "test_acc"), test.means()):
                m[key].append(value)
            print("%s epoch %d/%d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.2f s"
                  % (job["id"], epoch, epochs, m["train_loss"][-1], m["train_acc"][-1],
                     m["test_loss"][-1], m["test_acc"][-1], m["epoch_times_s"][-1]),
                  file=sys.stderr, flush=True)
            if epoch > epochs - paired:
                with meter.paused():
                    m["paired_floor_epoch_s"].append(floor.paired_floor_epoch(spec, params, args.seed))
    finally:
        meter.stop()
        m["end_unix_s"] = time.time()

    if paired:  # each pair an epoch and the floor epoch right after it: the machine's speed of
        # that moment divides out, also where it drifts within the run
        m["over_paired_floor"] = statistics.median(
            t / f for t, f in zip(m["epoch_times_s"][-paired:], m["paired_floor_epoch_s"]))
    result = ok_result(job, params, m, meter, ttfb, mod.version(), args)
    write_result(args.out, result, meter.rows)
    print("%s: wall %.2f s, cpu %.2f s, peak RSS %.0f MB, test acc %.4f%s; wrote %s"
          % (job["id"], m["wall_time_s"], m["cpu_time_s"], m["peak_rss_mb"], m["test_acc"][-1],
             ", %.3f x the floor timed in this process" % m["over_paired_floor"] if paired else "",
             args.out))
    return 0


def prepare_adapter(args, mod, spec, params):
    """The framework's adapter holding the data, and each epoch's batch order (``run`` and ``profile``).

    Loads the prepared data (first ``--train-size`` / ``--test-size`` examples), records their sizes
    in ``params``, seeds the initial weights and the shuffling from ``--seed``.
    """
    arrays = load(args.data, args.train_size, args.test_size)
    n_train = len(arrays["x_train"])
    if params["batch_size"] > n_train:
        # one short batch per epoch would be trained while the result records the asked size
        raise DataError("batch size %d is larger than the %d training examples (an epoch needs one full batch): lower batch_size "
                        "(network_params, --batch-size) or raise train_size (--train-size)" % (params["batch_size"], n_train))
    params["train_size"], params["test_size"] = n_train, len(arrays["x_test"])
    weights = networks.init_weights(spec, args.seed)
    rng = networks.shuffle_rng(args.seed)
    perms = [rng.permutation(n_train) for _ in range(params["epochs"])]
    adapter = mod.Adapter(spec, weights, device=args.device, lr=params["lr"], seed=args.seed,
                          threads=args.threads)
    adapter.set_data(arrays["x_train"], arrays["t_train"], arrays["x_test"], arrays["t_test"])
    return adapter, perms
