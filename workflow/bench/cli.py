"""Command line of the benchmark harness: ``python -m workflow.bench {prepare,run,floor,profile,gap}``.

The arguments are parsed first and the thread variables (``--threads``) put into the environment;
only then are NumPy and the framework imported (lazily), so that their thread pools honour them.
"""

import argparse
import os
import signal
import sys

from . import DEVICES, FRAMEWORKS, NUMPY_NETWORKS, PROFILED, NonFiniteLoss, blas_kernel, contract
from .networks import ALIASES, NETWORKS, resolve

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")

EXIT_NONFINITE = 3
EXIT_ERROR = 4


class Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler, so that ``finally`` blocks run."""


def network_arg(value):
    try:
        return resolve(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(value):
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % value) from None
    if n < 1:
        raise argparse.ArgumentTypeError("%r must be >= 1" % value)
    return n


def nonneg_int(value):
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % value) from None
    if n < 0:
        raise argparse.ArgumentTypeError("%r must be >= 0" % value)
    return n


def positive_float(value):
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % value) from None
    if not x > 0:
        raise argparse.ArgumentTypeError("%r must be > 0" % value)
    return x


def _add_common(p, data_required):
    p.add_argument("--network", required=True, type=network_arg, metavar="{%s}" % ",".join(NETWORKS),
                   help="network: %s (aliases %s)" % (", ".join(NETWORKS), ", ".join(
                       "%s=%s" % kv for kv in ALIASES.items())))
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--data", required=data_required, help="prepared npz (resources/mnist_prepared.npz)")
    p.add_argument("--out", required=True,
                   help="run, floor: the result JSON (the timeline CSV goes beside it); profile, gap: "
                        "the CSV (X.csv; X.md, and for gap X.json, go beside it)")
    p.add_argument("--epochs", type=positive_int, help="default: the network's (mlp 5, cnn 10)")
    p.add_argument("--batch-size", type=positive_int, help="default: the network's (mlp 100, cnn 128)")
    p.add_argument("--lr", type=positive_float, help="SGD learning rate; default: the network's (mlp 0.01, cnn 0.1)")
    p.add_argument("--train-size", type=positive_int, help="first N training examples (default all)")
    p.add_argument("--test-size", type=positive_int, help="first N test examples (default all)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="initial weights, shuffling, dropout")
    p.add_argument("--threads", type=positive_int,
                   help="BLAS/OpenMP/TF/torch threads (default: the cores available, %d)" % _cores())
    p.add_argument("--repeat", type=nonneg_int, default=0, help="repeat index (job id suffix r<R>)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar on stderr")
    p.add_argument("--sample-interval", type=positive_float, default=0.5,
                   help="CPU timeline sampling interval, seconds (default 0.5)")
    p.add_argument("--openblas-kernel", default="auto", choices=blas_kernel.MODES,
                   help="OpenBLAS kernel when OPENBLAS_CORETYPE is set: auto (the newer of it and "
                        "OpenBLAS's own choice, checked), inherit (as set), native (OpenBLAS's own)")
    p.add_argument("--malloc", default="tuned", choices=contract.MALLOC_MODES,
                   help="glibc malloc of the NumPy-based runs (%s): tuned (%s, set before the "
                        "process starts: freed large arrays are reused) or default (glibc's own); "
                        "PyTorch and TensorFlow always run with glibc's default (default: tuned)"
                   % (", ".join(contract.NUMPY_BASED), " ".join(
                       "%s=%s" % kv for kv in contract.MALLOC_TUNED_ENV.items())))


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m workflow.bench",
        description="StuCrs benchmark harness (MNIST; StuCrs, DeZero, TensorFlow, PyTorch).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{prepare,run,floor,profile,gap}")

    p = sub.add_parser("prepare", help="raw MNIST .gz -> prepared npz + sidecar JSON")
    p.add_argument("--mnist-dir", required=True, help="folder with the four MNIST .gz files")
    p.add_argument("--out", required=True, help="npz path (resources/mnist_prepared.npz)")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of the payloads")

    p = sub.add_parser("run", help="train and test one network with one framework, write the result JSON")
    p.add_argument("--framework", required=True, choices=FRAMEWORKS)
    _add_common(p, data_required=True)
    p.add_argument("--paired-floor-epochs", type=nonneg_int, default=0, metavar="K",
                   help="follow each of the last K training epochs by one epoch of the GEMM floor "
                        "with this process's NumPy (outside the timed region), and record the median "
                        "over these pairs of epoch / floor epoch (metrics.over_paired_floor); K above "
                        "the epochs means every epoch; CPU only; default 0")

    p = sub.add_parser("floor", help="time only the GEMMs of the same shapes and steps (NumPy/CuPy)")
    _add_common(p, data_required=False)
    p.add_argument("--library", default="numpy", choices=("numpy", "torch"),
                   help="whose matrix products: numpy (CuPy on the GPU; the summary's floor) or torch "
                        "(PyTorch's tensors, run with the torch environment)")

    p = sub.add_parser("profile", help="train like `run` and write where the time goes, function by "
                                       "function (StuCrs, DeZero; CPU), as CSV + Markdown")
    p.add_argument("--framework", required=True, choices=PROFILED)
    _add_common(p, data_required=True)

    p = sub.add_parser("gap", help="StuCrs's training step with parts made free one at a time (dense "
                                   "networks: bias, ReLU, batch gathering; cnn: ReLU, pooling, dropout "
                                   "and its mask), against the floor's step in the same process (CPU), "
                                   "as CSV + Markdown + JSON")
    _add_common(p, data_required=True)
    p.add_argument("--rounds", type=positive_int, default=10,
                   help="rounds; each times every variant for --steps steps (default 10)")
    p.add_argument("--steps", type=positive_int, default=100,
                   help="training steps per variant and round; their median is the round's (default 100)")
    return parser


def apply_threads(threads):
    for var in THREAD_VARS:
        os.environ[var] = str(threads)


def malloc_environment(args, environ):
    """The environment this command must run in for its ``--malloc`` mode (glibc reads these
    variables when the process starts, so a change means starting the process again)."""
    numpy_based = {"run": lambda: args.framework in contract.NUMPY_BASED,
                   "profile": lambda: args.framework in contract.NUMPY_BASED,
                   "floor": lambda: args.library == "numpy",
                   "gap": lambda: True}[args.command]()
    wanted = contract.MALLOC_TUNED_ENV if (numpy_based and args.malloc == "tuned") else {}
    _, env = contract.split_malloc_settings(environ)  # keeps the tunables that are not malloc's
    env.update(wanted)
    return env


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None):
    args = _parse(argv)
    if args.command in ("run", "floor", "profile", "gap"):
        env = malloc_environment(args, os.environ)
        restarted = os.environ.get("STUCRS_BENCH_RESTARTED") == "1"
        if env != dict(os.environ) and not restarted:
            if argv is None and "numpy" not in sys.modules:  # the command line: start again with it
                sys.stdout.flush()
                sys.stderr.flush()
                env["STUCRS_BENCH_RESTARTED"] = "1"  # once: never a loop
                os.execve(sys.executable, getattr(sys, "orig_argv", [sys.executable, "-m", "workflow.bench",
                                                                      *sys.argv[1:]]), env)
            # called in-process (tests): the process keeps its malloc; the result records which
    from . import record

    record.source_at_start()  # the code this run starts with (git commit, uncommitted changes)
    # SIGTERM (Snakemake cancelling a job) raises Terminated from here on (after any restart
    # above), so that `finally` blocks run and the job says why it stopped; no result is written
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args)
    except Terminated:
        print("\nterminated (SIGTERM); no result written", file=sys.stderr)
        return 143


def _parse(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run" and args.framework == "numpy" and args.network not in NUMPY_NETWORKS:
        parser.error("--framework numpy (the hand-written NumPy reference) trains the dense networks "
                     "only (%s), not %s; pick one of those or another framework"
                     % (", ".join(NUMPY_NETWORKS), args.network))
    if args.command in ("profile", "gap") and args.device != "cpu":
        parser.error("%s times CPU runs only (GPU calls return before their kernels finish); "
                     "drop --device %s" % (args.command, args.device))
    if args.command in ("profile", "gap") and not args.out.endswith(".csv"):
        parser.error("--out of %s is the CSV table and must end in .csv (the .md%s go beside it), "
                     "not %s" % (args.command, " and .json" if args.command == "gap" else "",
                                 args.out))
    return args


def _run(args):
    if args.command in ("run", "floor", "profile", "gap"):
        if args.threads is None:
            args.threads = _cores()
        apply_threads(args.threads)
        blas_kernel.apply(args.openblas_kernel)  # before NumPy loads OpenBLAS
        if "numpy" in sys.modules:  # imported in-process before us: limit its pools directly
            try:
                from threadpoolctl import threadpool_limits
                threadpool_limits(args.threads)
            except ImportError:
                pass
    from .adapters import FrameworkMissing
    from .data import DataError

    try:
        if args.command == "prepare":
            from .data import prepare
            meta = prepare(args.mnist_dir, args.out, verify=not args.no_verify)
            print("wrote %s (%s) and its sidecar" % (args.out, ", ".join(
                "%s %s" % (k, "x".join(map(str, v))) for k, v in meta["shapes"].items())))
            return 0
        if args.command == "run":
            from .runner import run
            return run(args)
        if args.command == "profile":
            from .profile import run_profile
            return run_profile(args)
        if args.command == "gap":
            from .gap import run_gap
            return run_gap(args)
        from .floor import run_floor
        return run_floor(args)
    except NonFiniteLoss as exc:
        print("error: %s; stopped, no result written" % exc, file=sys.stderr)
        return EXIT_NONFINITE
    except (DataError, FrameworkMissing) as exc:
        print("error: %s" % exc, file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted (SIGINT); no result written", file=sys.stderr)
        return 130
