"""Measuring and recording: CPU timeline sampler, resource totals, environment capture, atomic writes.

Imports nothing heavy at module level (psutil and the standard library only), so the CLI can use it
before NumPy and the frameworks are imported.
"""

import contextlib
import csv
import io
import json
import os
import platform
import sys
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

try:
    import resource
except ImportError:  # pragma: no cover - not on Linux
    resource = None

import psutil

from . import blas_kernel

REPO_ROOT = Path(__file__).resolve().parents[2]
_UMASK = os.umask(0)
os.umask(_UMASK)
TIMELINE_HEADER = ("t_s", "cpu_percent_core", "cpu_percent_machine", "rss_mb")


# --------------------------------------------------------------------------- atomic writes


def atomic_write(path, write, binary=False):
    """Write ``path`` through ``write(fileobj)`` into a temporary file beside it, then rename.

    On any exception, ``KeyboardInterrupt`` and ``SystemExit`` (our SIGTERM handler) included,
    the temporary file is removed and the exception goes on: ``path`` is either complete or untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path, obj):
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=False) + "\n"))


def atomic_write_csv(path, header, rows):
    def write(f):
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(_fmt(v) for v in row) + "\n")

    atomic_write(path, write)


def dict_rows_csv(columns, rows, formats):
    """CSV text (header, then one line per row) of dict ``rows``; ``formats`` maps a column to the
    %-format of its numbers (``{"share": "%.4f"}``), the other columns are written as they are."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, **{k: fmt % r[k] for k, fmt in formats.items()}})
    return buf.getvalue()


def _fmt(v):
    if isinstance(v, float):
        return "%.6g" % v
    return str(v)


# --------------------------------------------------------------------------- CPU and memory


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def _tree(proc):
    try:
        return [proc] + proc.children(recursive=True)
    except psutil.Error:
        return [proc]


def process_cpu_times(proc=None):
    """(user, system) seconds of this process + its live and its reaped children."""
    proc = proc or psutil.Process()
    user = sys_ = 0.0
    for i, p in enumerate(_tree(proc)):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        user += t.user
        sys_ += t.system
        if i == 0:  # reaped children are accounted to the parent
            user += getattr(t, "children_user", 0.0)
            sys_ += getattr(t, "children_system", 0.0)
    return user, sys_


def process_rss_mb(proc=None):
    proc = proc or psutil.Process()
    total = 0
    for p in _tree(proc):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2 ** 20


def release_free_memory():
    """Hand the C heap's free memory back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    After the paired floor's operands are freed, glibc keeps their pages for later allocations,
    and the run's sampled RSS would go on counting them."""
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl without it, Windows)
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


def peak_rss_mb():
    """Lifetime peak RSS of this process (and of its largest reaped child), MiB."""
    if resource is None:  # pragma: no cover
        return process_rss_mb()
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, child_kb) / 1024.0


class CpuSampler:
    """Samples CPU use and RSS of this process + children every ``interval`` seconds in a thread.

    Rows: ``t_s`` (since ``start``), ``cpu_percent_core`` (100 = one core busy),
    ``cpu_percent_machine`` (100 = all cores busy), ``rss_mb``.  ``stop`` takes a final sample,
    so even a run shorter than one interval has one row.
    """

    def __init__(self, interval=0.5, cores=None):
        self.interval = float(interval)
        self.cores = cores or available_cores()
        self.rows = []
        self.max_rss_mb = 0.0
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()
        self._paused_at = None

    def start(self):
        self._t0 = self._prev_t = time.perf_counter()
        self._prev_cpu = sum(process_cpu_times(self._proc))
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        with self._lock:
            if self._paused_at is not None:
                return
            now = time.perf_counter()
            cpu = sum(process_cpu_times(self._proc))
            rss = process_rss_mb(self._proc)
            dt = now - self._prev_t
            if dt <= 0:
                return
            pct = max(0.0, (cpu - self._prev_cpu) / dt * 100.0)
            self.rows.append((round(now - self._t0, 4), pct, pct / self.cores, rss))
            self.max_rss_mb = max(self.max_rss_mb, rss)
            self._prev_t, self._prev_cpu = now, cpu

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def pause(self):
        """Stop sampling (after one last sample) until ``resume``."""
        self._sample()
        with self._lock:
            self._paused_at = time.perf_counter()

    def resume(self):
        """Sample again; the timeline's ``t_s`` goes on from where ``pause`` left it."""
        with self._lock:
            now = time.perf_counter()
            self._t0 += now - self._paused_at  # the paused time is not on the timeline
            self._prev_t, self._prev_cpu = now, sum(process_cpu_times(self._proc))
            self._paused_at = None

    def stop(self):
        if self._thread is None:
            return self.rows
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._sample()
        return self.rows


class ResourceMeter:
    """Wall clock, CPU user/system (process + children) and timeline over a timed region.

    ``with meter.paused():`` leaves a stretch out of all of them (``run``'s paired floor epochs
    between the training epochs): wall and CPU seconds are summed over the timed stretches only,
    the timeline skips the pause, and the peak RSS is the lifetime peak up to the first pause
    together with the sampled RSS of the stretches after it, so that memory allocated and freed
    during a pause is not counted.
    """

    def __init__(self, interval=0.5):
        self.sampler = CpuSampler(interval)
        self._peak_at_first_pause = None

    def __enter__(self):
        return self.start()

    def start(self):
        self.sampler.start()
        self.cpu0 = process_cpu_times()
        self.t0 = time.perf_counter()
        self._wall = 0.0
        self._cpu = (0.0, 0.0)
        return self

    def _close_stretch(self):
        now, cpu1 = time.perf_counter(), process_cpu_times()
        self._wall += now - self.t0
        self._cpu = (self._cpu[0] + cpu1[0] - self.cpu0[0], self._cpu[1] + cpu1[1] - self.cpu0[1])

    @contextlib.contextmanager
    def paused(self):
        """Leave the body out of the measurement (see the class)."""
        self._close_stretch()
        self.sampler.pause()
        if self._peak_at_first_pause is None:
            self._peak_at_first_pause = peak_rss_mb()
        try:
            yield self
        finally:
            self.sampler.resume()
            self.cpu0 = process_cpu_times()
            self.t0 = time.perf_counter()

    def stop(self):
        self._close_stretch()
        self.wall_s = self._wall
        self.rows = self.sampler.stop()
        self.cpu_user_s, self.cpu_sys_s = self._cpu
        lifetime = peak_rss_mb() if self._peak_at_first_pause is None else self._peak_at_first_pause
        self.peak_rss_mb = max(lifetime, self.sampler.max_rss_mb)
        return self

    def __exit__(self, *exc):
        if self.sampler._thread is not None:
            self.stop()
        return False


def process_start_time():
    """Wall-clock (``time.time``) start of this process."""
    try:
        return psutil.Process().create_time()
    except psutil.Error:  # pragma: no cover
        return time.time()


# --------------------------------------------------------------------------- environment


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(root, *args):
    """``git ARGS`` in ``root``: its output, or None where git is missing or fails. No optional
    locks: reading the state never writes the repository's index."""
    try:
        out = subprocess.run(["git", "--no-optional-locks", *args], cwd=str(root), capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit(root=REPO_ROOT):
    commit = (_git(root, "rev-parse", "HEAD") or "").strip()
    return commit or "unknown"


def git_dirty(root=REPO_ROOT):
    """True where tracked files differ from the checked-out commit (the code is not that commit's
    alone), False where they do not, None where git cannot tell. Untracked and ignored files
    (results/, resources/, environments) do not count."""
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status.strip())


_SOURCE = {}


def source_at_start():
    """{"git_commit", "git_dirty"} of this checkout, read on the first call: the harness calls it
    when a command starts, so that a run records the code it started with even if files change or
    a commit is made while it trains."""
    if not _SOURCE:
        _SOURCE.update(git_commit=git_commit(), git_dirty=git_dirty())
    return dict(_SOURCE)


_BLAS_KEYS = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer",
              "architecture", "filepath")


def blas_info():
    """The thread pools (BLAS, OpenMP) actually loaded in this process, via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl not installed"}]
    try:
        return [{k: d.get(k) for k in _BLAS_KEYS if k in d} for d in threadpool_info()]
    except Exception as exc:  # noqa: BLE001 - never fail a run for its metadata
        return [{"error": "threadpoolctl failed: %s" % exc}]


def malloc_info():
    """How glibc malloc is set in this process: ``tuned`` (the harness's ``--malloc tuned``: glibc's
    variables of contract.MALLOC_TUNED_ENV), ``default`` (glibc's own), or what else set it."""
    from . import contract
    preset, _ = contract.split_malloc_settings(os.environ)
    fast_malloc = sys.modules.get("stucrs.fast.malloc")
    by_call = fast_malloc.malloc_status() if fast_malloc is not None else ""
    if by_call.startswith("tuned"):
        return by_call
    if preset == contract.MALLOC_TUNED_ENV:
        return "tuned: " + ", ".join("%s=%s" % kv for kv in preset.items())
    if not preset:
        return "default"
    return "custom: " + ", ".join("%s=%s" % kv for kv in preset.items())


def blas_update_info():
    """Which BLAS routines StuCrs's fast SGD updates with (``stucrs.fast.blas``: axpy, and gemm
    for dense layers' weights), when StuCrs is loaded."""
    blas = sys.modules.get("stucrs.fast.blas")
    return blas.blas_status() if blas is not None else "StuCrs not loaded"


def matmul_plan_info():
    """How StuCrs computed the large input-gradient products ``gy @ W.T`` in this run
    (``stucrs.fast.matmul_plan``: per shape ``direct``, ``transposed``, or ``measuring`` while its
    first calls are still being timed), when StuCrs is loaded."""
    plan = sys.modules.get("stucrs.fast.matmul_plan")
    return plan.plans() if plan is not None else "StuCrs not loaded"


def stucrs_fast_info():
    """Whether StuCrs ran its fast paths (``stucrs.Config.fast``), when StuCrs is loaded."""
    core = sys.modules.get("stucrs.core")
    return bool(core.Config.fast) if core is not None else None


def numpy_version():
    try:
        import numpy
        return numpy.__version__
    except ImportError:  # pragma: no cover
        return ""


def environment(framework_version, threads, data_sha256):
    return {
        "python": platform.python_version(),
        "framework_version": framework_version,
        "numpy": numpy_version(),
        "blas": blas_info(),
        "openblas_kernel": blas_kernel.current(),
        "malloc": malloc_info(),
        "blas_update": blas_update_info(),
        "matmul_plan": matmul_plan_info(),
        "stucrs_fast": stucrs_fast_info(),
        "cpu_model": cpu_model(),
        "cores": available_cores(),
        "threads": threads,
        **source_at_start(),
        "data_sha256": data_sha256 or {},
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
    }

