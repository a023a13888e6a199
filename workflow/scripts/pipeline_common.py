"""Helpers shared by the pipeline scripts (run by Snakemake's ``script:`` or from the command line).

Reading the harness result JSONs (``docs/en/architecture.md``, "Benchmark run") into tables,
atomic writes and log redirection.
"""

import contextlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: workflow.bench
from workflow.bench import contract  # noqa: E402 - the names every part agrees on, defined once

TIMELINE_COLUMNS = list(contract.TIMELINE_COLUMNS)
FRAMEWORK_LABELS = dict(contract.LABELS)
NETWORK_ORDER = list(contract.NETWORKS)
FRAMEWORK_ORDER = list(contract.FRAMEWORKS)
DEVICE_ORDER = list(contract.DEVICES)
# Variants whose matrix products go through NumPy's BLAS on the CPU: the summary names its kernel.
# (PyTorch and TensorFlow load NumPy's OpenBLAS too, but multiply with their own libraries.)
NUMPY_BLAS_FRAMEWORKS = contract.NUMPY_BASED


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


@contextlib.contextmanager
def logging_to(log_path):
    """Send stdout/stderr of the block to ``log_path`` (appending); errors are also shown on the
    original stderr, so that the reason of a failed job is visible in Snakemake's output."""
    if not log_path:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    real_err = sys.stderr
    with open(log_path, "a", encoding="utf-8") as fh:
        with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            try:
                yield
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    msg = exc.code if isinstance(exc.code, str) else "exit status %s" % exc.code
                    print(msg, file=fh)
                    print(msg, file=real_err)
                raise
            except BaseException as exc:
                import traceback
                traceback.print_exc(file=fh)
                print("%s: %s (details in %s)" % (type(exc).__name__, exc, log_path), file=real_err)
                raise


def load_result(path):
    with open(path, encoding="utf-8") as fh:
        res = json.load(fh)
    if not isinstance(res, dict) or "job" not in res:
        raise ValueError("%s is not a benchmark result JSON (no 'job')" % path)
    # version 2 (contract.SCHEMA_VERSION) added environment.stucrs_fast; version 1 reads the same
    if res.get("schema_version", 1) not in (1, contract.SCHEMA_VERSION):
        raise ValueError("%s: unsupported schema_version %r" % (path, res.get("schema_version")))
    return res


def variant_label(framework, device):
    return "%s (%s)" % (FRAMEWORK_LABELS.get(framework, framework), device.upper())


def _num(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return x


def numpy_blas_kernel(res):
    """The OpenBLAS kernel NumPy multiplied with in a CPU run of a NumPy-based variant, else ''."""
    job = res.get("job") or {}
    if job.get("framework") not in NUMPY_BLAS_FRAMEWORKS or job.get("device", "cpu") != "cpu":
        return ""
    pools = (res.get("environment") or {}).get("blas") or []
    return ",".join(sorted({str(p["architecture"]) for p in pools if isinstance(p, dict)
                            and p.get("internal_api") == "openblas" and p.get("architecture")}))


def runs_table(results):
    """One row per result: job fields, status, scalar metrics, final accuracy."""
    import pandas as pd

    rows = []
    for res in results:
        job, m = res["job"], res.get("metrics") or {}
        test_acc = [a for a in (m.get("test_acc") or []) if a is not None]
        rows.append({
            "job_id": job["id"], "network": job["network"], "framework": job["framework"],
            "device": job["device"], "repeat": int(job.get("repeat", 0)),
            "variant": variant_label(job["framework"], job["device"]),
            "status": res.get("status", "ok"), "message": res.get("message", ""),
            "wall_time_s": _num(m.get("wall_time_s")),
            "time_to_first_batch_s": _num(m.get("time_to_first_batch_s")),
            "cpu_time_s": _num(m.get("cpu_time_s")),
            "cpu_user_s": _num(m.get("cpu_user_s")), "cpu_sys_s": _num(m.get("cpu_sys_s")),
            "peak_rss_mb": _num(m.get("peak_rss_mb")),
            "test_acc": _num(test_acc[-1]) if test_acc else float("nan"),
            "epochs": (res.get("params") or {}).get("epochs"),
            "blas_kernel": numpy_blas_kernel(res),
            "over_paired_floor": _num(m.get("over_paired_floor")),
        })
    return pd.DataFrame(rows, columns=[
        "job_id", "network", "framework", "device", "repeat", "variant", "status", "message",
        "wall_time_s", "time_to_first_batch_s", "cpu_time_s", "cpu_user_s", "cpu_sys_s",
        "peak_rss_mb", "test_acc", "epochs", "blas_kernel", "over_paired_floor"])


def epochs_table(results):
    """One row per (run, epoch): losses, accuracies, epoch time."""
    import pandas as pd

    rows = []
    for res in results:
        if res.get("status", "ok") != "ok":
            continue
        job, m = res["job"], res.get("metrics") or {}
        n = max((len(m.get(k) or []) for k in ("test_acc", "train_loss", "epoch_times_s")), default=0)
        for i in range(n):
            def at(key):
                seq = m.get(key) or []
                return _num(seq[i]) if i < len(seq) else float("nan")
            rows.append({"job_id": job["id"], "network": job["network"],
                         "framework": job["framework"], "device": job["device"],
                         "repeat": int(job.get("repeat", 0)),
                         "variant": variant_label(job["framework"], job["device"]),
                         "epoch": i + 1, "train_loss": at("train_loss"),
                         "train_acc": at("train_acc"), "test_loss": at("test_loss"),
                         "test_acc": at("test_acc"), "epoch_time_s": at("epoch_times_s")})
    return pd.DataFrame(rows, columns=["job_id", "network", "framework", "device", "repeat",
                                       "variant", "epoch", "train_loss", "train_acc",
                                       "test_loss", "test_acc", "epoch_time_s"])


def timeline_path(result_path, res):
    name = res.get("timeline_csv")
    if name:
        return Path(result_path).with_name(Path(name).name)
    p = Path(result_path)
    return p.with_name(p.name[: -len(".json")] + ".timeline.csv")


def timelines_table(paths_and_results):
    """CPU/memory samples of every run: the columns of the timeline CSV + job fields."""
    import pandas as pd

    frames = []
    for path, res in paths_and_results:
        tl = timeline_path(path, res)
        if res.get("status", "ok") != "ok" or not tl.exists() or tl.stat().st_size == 0:
            continue
        df = pd.read_csv(tl)
        if df.empty:
            continue
        job = res["job"]
        for key in ("network", "framework", "device"):
            df[key] = job[key]
        df["repeat"] = int(job.get("repeat", 0))
        df["job_id"] = job["id"]
        df["variant"] = variant_label(job["framework"], job["device"])
        frames.append(df)
    cols = TIMELINE_COLUMNS + ["network", "framework", "device", "repeat", "job_id", "variant"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)


def ordered(values, order):
    values = list(dict.fromkeys(values))
    return [v for v in order if v in values] + sorted(v for v in values if v not in order)


def is_finite(x):
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
