"""Benchmark harness: StuCrs vs DeZero vs TensorFlow vs PyTorch on MNIST.

Run it as ``python -m workflow.bench {prepare,run,floor,profile,gap} ...`` (see ``docs/en/architecture.md``).

Nothing heavy is imported here on purpose: the thread count has to be put into the environment
(``OMP_NUM_THREADS`` ...) *before* NumPy or a framework is imported, so the CLI parses its arguments
first and imports the rest lazily.
"""

from .contract import DEVICES, FRAMEWORKS, NUMPY_NETWORKS, PROFILED, SCHEMA_VERSION  # noqa: F401


class NonFiniteLoss(Exception):
    """A NaN or infinite loss: the run stops and writes no result."""

    def __init__(self, phase, epoch, step, value):
        self.phase, self.epoch, self.step, self.value = phase, epoch, step, value
        super().__init__("non-finite %s loss (%r) at epoch %d, step %d" % (phase, value, epoch, step))
