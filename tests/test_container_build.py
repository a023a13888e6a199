"""The image, built and run for real: scripts/container_check.sh builds the light image from the
project's Dockerfile with podman (a local Ubuntu 22.04 base made by debootstrap, no registry) and
runs the quick preset (StuCrs and NumPy variants) inside it as the non-root user.

Needs root and apt-get (CI and these machines have both); elsewhere it skips with the reason.
About 5-8 minutes on a 2-core machine the first time (the base image is cached afterwards)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_the_light_image_builds_and_runs_the_quick_preset_as_the_non_root_user():
    if os.geteuid() != 0:
        pytest.skip("the container check builds with rootful podman: run the tests as root (CI does)")
    if not shutil.which("apt-get"):
        pytest.skip("the container check installs podman with apt-get: a Debian/Ubuntu host is needed")
    mnist = os.environ.get("STUCRS_MNIST_DIR") or str(ROOT.parent / "shared" / "mnist")
    if not Path(mnist, "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("no MNIST copy (tests/mnist_setup.py makes one available as STUCRS_MNIST_DIR)")
    r = subprocess.run(["bash", str(ROOT / "scripts" / "container_check.sh")], cwd=ROOT,
                       env=dict(os.environ, STUCRS_MNIST_DIR=mnist), capture_output=True, text=True,
                       timeout=1500)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert "inside: postCreateCommand: python3 envs/build.py" in out
    assert "snakemake 9." in out and "stucrs 0.1.0 from /workspaces/stucrs/stucrs/__init__.py" in out
    user_line = next(line for line in out.splitlines() if line.startswith("user "))
    assert "stucrs (" in user_line and "(0:" not in user_line, user_line
    assert "MLflow runs, all owned by" in r.stdout and r.stdout.rstrip().endswith("as the non-root user")
