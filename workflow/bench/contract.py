"""The benchmark's contract: the names every part agrees on, defined once.

Imported by the Snakefile's rules (``workflow/rules/common.smk``), the harness (``workflow.bench``)
and the pipeline scripts (``workflow/scripts``). Plain constants and pure functions only: no NumPy,
no framework, so that importing it never starts a thread pool or changes the process.
"""

SCHEMA_VERSION = 2  # of the result JSON (docs/en/architecture.md, "Benchmark run")

NETWORKS = ("mlp1", "mlp2", "cnn")
DEVICES = ("cpu", "gpu")

# Framework variants of the benchmark, in the order of the tables and figures.
# "stucrs-book" is StuCrs with its fast paths switched off (STUCRS_FAST=0: only the book's code);
# "numpy" is the hand-written NumPy loop (dense networks, CPU only).
FRAMEWORKS = ("stucrs", "stucrs-book", "dezero", "tensorflow", "torch", "numpy")
LABELS = {"stucrs": "StuCrs", "stucrs-book": "StuCrs (book)", "dezero": "DeZero",
          "tensorflow": "TensorFlow", "torch": "PyTorch", "numpy": "NumPy by hand",
          "floor": "GEMM floor"}
NUMPY_NETWORKS = ("mlp1", "mlp2")  # the hand-written NumPy loop's networks
CPU_ONLY = ("numpy", "stucrs-book")  # variants that have no GPU run
# The environment (envs/NAME) each variant runs in, where it is not its own name.
ENV_OF = {"numpy": "stucrs", "stucrs-book": "stucrs", "floor": "stucrs"}
PROFILED = ("stucrs", "dezero")  # frameworks with DeZero's Function / Optimizer classes
# Variants whose arrays live in NumPy (and its BLAS) on the CPU: glibc malloc is set alike for all
# of them (MALLOC below), and the summary names their OpenBLAS kernel.
NUMPY_BASED = ("stucrs", "stucrs-book", "dezero", "numpy", "floor")

# glibc malloc for the NumPy-based runs: "tuned" keeps freed large arrays in the process instead of
# handing them back to the OS (no page faults for the next step's temporaries), set through
# glibc's own environment variables before the process starts; "default" is glibc's own setting.
MALLOC_MODES = ("tuned", "default")
MALLOC_TUNED_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "536870912"}


def split_malloc_settings(environ):
    """(glibc malloc's settings in ``environ``, the rest of it): its ``MALLOC_*_`` variables and the
    ``glibc.malloc.*`` entries of ``GLIBC_TUNABLES`` (last), apart from everything else."""
    malloc, rest = {}, {}
    for key in sorted(environ):
        if key.startswith("MALLOC_") and key.endswith("_"):
            malloc[key] = environ[key]
        elif key != "GLIBC_TUNABLES":
            rest[key] = environ[key]
    tunables = [t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t]
    for target, keep in ((malloc, True), (rest, False)):
        chosen = [t for t in tunables if t.startswith("glibc.malloc.") == keep]
        if chosen:
            target["GLIBC_TUNABLES"] = ":".join(chosen)
    return malloc, rest

# The CPU timeline CSV written beside every result.
TIMELINE_COLUMNS = ("t_s", "cpu_percent_core", "cpu_percent_machine", "rss_mb")

# MNIST: the four files and the SHA-256 of their decompressed IDX payloads (the standard pins,
# equal to stucrs.datasets.MNIST_SHA256; ../shared/mnist/README.md).
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_FILES = tuple(MNIST_SHA256)


def source_label(env):
    """How a result names the code it ran: the commit's first 12 characters, with
    ``with uncommitted changes`` where tracked files differed from it and ``changes unknown``
    where that was not recorded (older results, or no git)."""
    commit = (env.get("git_commit") or "unknown")[:12]
    dirty = env.get("git_dirty")
    return commit + {True: " with uncommitted changes", False: ""}.get(dirty, " (changes unknown)")
