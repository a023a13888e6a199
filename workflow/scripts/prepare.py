"""Rule ``prepare``: ``python -m workflow.bench prepare`` -> ``resources/mnist_prepared.npz``
(+ its JSON sidecar), run with the interpreter of the workflow (the workspace environment)."""

import subprocess
import sys
from pathlib import Path

from pipeline_common import logging_to


def main(smk):
    mnist_dir = Path(smk.input[0]).parent
    cmd = [sys.executable, "-m", "workflow.bench", "prepare",
           "--mnist-dir", str(mnist_dir), "--out", smk.output.npz]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=sys.stdout, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit("prepare: `%s` failed with exit status %d (see %s)"
                 % (" ".join(cmd[1:]), proc.returncode, smk.log[0]))
    if not Path(smk.output.sidecar).exists():
        sys.exit("prepare: the harness wrote no sidecar %s" % smk.output.sidecar)


if __name__ == "__main__" and "snakemake" in globals():
    with logging_to(snakemake.log[0]):  # noqa: F821
        main(snakemake)  # noqa: F821
