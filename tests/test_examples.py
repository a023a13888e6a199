"""Each example runs end to end for a moment (one short epoch) as a subprocess."""
import os
import subprocess
import sys

import pytest
from mnist_setup import SKIP_REASON, find_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def _mnist_dir():
    found = find_mnist()
    return None if found is None else str(found)


def run(script, *args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)
    return proc


def test_spiral(tmp_path):
    out = tmp_path / "fig" / "spiral.png"
    proc = run("spiral.py", "--epochs", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "epoch   3/3" in proc.stdout and "train loss" in proc.stdout
    assert out.exists() and out.stat().st_size > 1000


def test_sin_lstm(tmp_path):
    proc = run("sin_lstm.py", "--epochs", "1", "--hidden", "10", "--train-size", "200", "--test-size", "50",
               "--no-progress", "--out", str(tmp_path / "sin.png"))
    assert proc.returncode == 0, proc.stderr
    assert "test mse" in proc.stdout and (tmp_path / "sin.png").exists()


@pytest.mark.parametrize("script,extra", [
    ("mnist_mlp.py", ["--layers", "1", "--hidden", "50"]),
    ("mnist_mlp.py", ["--layers", "2", "--hidden", "30"]),
    ("mnist_cnn.py", []),
])
def test_mnist_examples(script, extra):
    mnist = _mnist_dir()
    if mnist is None:
        pytest.skip(SKIP_REASON)
    proc = run(script, "--epochs", "1", "--train-size", "256", "--test-size", "200", "--mnist-dir", mnist, *extra)
    assert proc.returncode == 0, proc.stderr
    assert "epoch   1/1" in proc.stdout and "test loss" in proc.stdout and "acc" in proc.stdout


def test_gpu_without_gpu_is_a_clear_error():
    from stucrs import cuda

    if cuda.gpu_enable:
        pytest.skip("a GPU is present")
    proc = run("spiral.py", "--device", "gpu", "--epochs", "1", "--out", "")
    assert proc.returncode != 0
    assert "--device gpu" in proc.stderr and "not available" in proc.stderr
