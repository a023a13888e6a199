"""Rule ``download_mnist``: the four MNIST ``.gz`` files into ``resources/mnist/``, verified.

``stucrs.datasets.fetch_mnist`` copies them from the configured ``mnist_dir`` when set, else
downloads them from ``mnist.mirrors``; every file is checked against its pinned SHA-256 and
written atomically.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.getcwd())  # the checkout's own stucrs package, before any installed one

from pipeline_common import logging_to  # noqa: E402


def main(smk):
    dest = Path(smk.output[0]).parent
    cfg = smk.config
    local_dir = cfg.get("mnist_dir") or None
    mirrors = tuple(cfg["mnist"].get("mirrors") or ())
    try:
        from stucrs.datasets import DEFAULT_MIRRORS, MNISTError, fetch_mnist
    except ImportError as exc:
        sys.exit("download_mnist: cannot import stucrs.datasets (%s); run Snakemake with the "
                 "workspace environment (.venvs/workspace/bin/snakemake)" % exc)
    env_dir = os.environ.get("STUCRS_MNIST_DIR")
    if not local_dir and env_dir:
        print("mnist_dir not set; using STUCRS_MNIST_DIR=%s" % env_dir)
        local_dir = env_dir
    if local_dir:
        local_dir = os.path.abspath(os.path.expanduser(local_dir))
        if not os.path.isdir(local_dir):
            sys.exit("download_mnist: the folder given by the configuration key mnist_dir "
                     "does not exist: %s (set it with --config mnist_dir=PATH, a folder holding %s)"
                     % (local_dir, ", ".join(Path(p).name for p in smk.output)))
        print("copying MNIST from mnist_dir=%s" % local_dir)
    else:
        print("downloading MNIST from %s" % ", ".join(mirrors or DEFAULT_MIRRORS))
    try:
        paths = fetch_mnist(dest, mirrors=mirrors or DEFAULT_MIRRORS, local_dir=local_dir,
                            retries=int(cfg["mnist"].get("retries", 3)),
                            timeout=float(cfg["mnist"].get("timeout_s", 30)))
    except MNISTError as exc:
        source = ("mnist_dir=%s" % local_dir) if local_dir else "the mirrors (mnist.mirrors)"
        sys.exit("download_mnist: could not get MNIST from %s:\n%s\nThe pipeline reads a local "
                 "copy with --config mnist_dir=PATH (configuration key `mnist_dir`)."
                 % (source, exc))
    for name, path in paths.items():
        print("ok %s -> %s" % (name, path))


if __name__ == "__main__" and "snakemake" in globals():
    with logging_to(snakemake.log[0]):  # noqa: F821
        main(snakemake)  # noqa: F821
