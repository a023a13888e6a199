"""The result record shared by ``run`` and ``floor``: job ids, parameters, metrics, the JSON.

Imported by the CLI only after the thread variables are set.
"""

import sys
from pathlib import Path

from . import SCHEMA_VERSION, record
from .data import read_sidecar


def resolve_params(args, spec):
    return {
        "epochs": args.epochs or spec.epochs,
        "batch_size": args.batch_size or spec.batch_size,
        "lr": args.lr or spec.lr,
        "train_size": args.train_size,  # None until the data is loaded
        "test_size": args.test_size,
        "seed": args.seed,
        "threads": args.threads,
    }


def job_of(args, framework):
    return {
        "id": "%s-%s-%s-r%d" % (args.network, framework, args.device, args.repeat),
        "network": args.network,
        "framework": framework,
        "device": args.device,
        "repeat": args.repeat,
    }


def empty_metrics():
    return {
        "wall_time_s": None, "epoch_times_s": [], "time_to_first_batch_s": None,
        "cpu_user_s": None, "cpu_sys_s": None, "cpu_time_s": None, "peak_rss_mb": None,
        "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": [],
        # run --paired-floor-epochs K: the floor epoch timed right after each of the last K
        # epochs, and the median over these pairs of epoch / floor epoch (None without them)
        "paired_floor_epoch_s": [], "over_paired_floor": None,
        # wall-clock start and end of the timed region (Unix seconds): the MLflow run's own times
        "start_unix_s": None, "end_unix_s": None,
    }


def timeline_path(out):
    out = Path(out)
    stem = out.name[:-5] if out.name.endswith(".json") else out.name
    return out.with_name(stem + ".timeline.csv")


def data_sha256(data_path):
    if not data_path:
        return {}
    try:
        return read_sidecar(data_path).get("sha256", {})
    except (OSError, ValueError):
        return {}


def write_result(out, result, timeline_rows=None):
    """Timeline CSV first, then the JSON (its presence marks a complete result); both atomic."""
    csv_path = None
    if timeline_rows is not None:
        csv_path = timeline_path(out)
        record.atomic_write_csv(csv_path, record.TIMELINE_HEADER, timeline_rows)
        result["timeline_csv"] = csv_path.name
    try:
        record.atomic_write_json(out, result)
    except BaseException:
        if csv_path is not None:
            try:
                csv_path.unlink()
            except FileNotFoundError:
                pass
        raise


def no_gpu_result(args, job, params, message, framework_version):
    return {
        "schema_version": SCHEMA_VERSION,
        "job": job,
        "status": "no_gpu",
        "message": message,
        "params": params,
        "metrics": empty_metrics(),
        "timeline_csv": None,
        "environment": record.environment(framework_version, args.threads, data_sha256(args.data)),
    }


def progress_bar(args, total, desc):
    if args.no_progress:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, mininterval=0.5,
                dynamic_ncols=True)


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


class RunningMean:
    def __init__(self):
        self.loss = self.acc = 0.0
        self.n = 0

    def add(self, loss, acc, n):
        self.loss += loss * n
        self.acc += acc * n
        self.n += n

    def means(self):
        return self.loss / max(self.n, 1), self.acc / max(self.n, 1)


def ok_result(job, params, m, meter, ttfb, framework_version, args):
    """The result record of a finished timed region (training runs and the GEMM floor alike)."""
    m.update(wall_time_s=meter.wall_s, time_to_first_batch_s=ttfb, cpu_user_s=meter.cpu_user_s,
             cpu_sys_s=meter.cpu_sys_s, cpu_time_s=meter.cpu_user_s + meter.cpu_sys_s,
             peak_rss_mb=meter.peak_rss_mb)
    return {
        "schema_version": SCHEMA_VERSION,
        "job": job,
        "status": "ok",
        "message": "",
        "params": params,
        "metrics": m,
        "timeline_csv": None,
        "environment": record.environment(framework_version, args.threads, data_sha256(args.data)),
    }
