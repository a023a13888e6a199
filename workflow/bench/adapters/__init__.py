"""One adapter module per framework; each trains the shared networks the idiomatic way for it.

An adapter module defines:

* ``NAME`` and ``version()`` -> the framework's version string;
* ``gpu_status()`` -> ``(available: bool, message: str)``;
* ``Adapter(spec, weights, *, device, lr, seed, threads)`` with
  ``set_data(x_train, t_train, x_test, t_test)`` (NumPy float32 (N, 784) / int64, moved and reshaped
  once, outside the timed region), ``train_epoch(perm, batch_size)`` and ``test_epoch(batch_size)``,
  generators yielding ``(loss, accuracy, n)`` per batch as Python floats / int (batch means of the
  softmax cross entropy and of the accuracy), and ``sync()`` (waits for the device).

``perm`` is the epoch's shuffle permutation, drawn by the harness with NumPy, identical for every
framework; batch ``i`` is ``perm[i*B:(i+1)*B]`` (the last batch may be smaller).
Modules are imported lazily (``load``), after the thread variables are set.
"""

import importlib

from ..contract import ENV_OF

MODULES = {
    "stucrs": "stucrs_adapter",
    "stucrs-book": "stucrs_book_adapter",
    "dezero": "dezero_adapter",
    "tensorflow": "tensorflow_adapter",
    "torch": "torch_adapter",
    "numpy": "numpy_adapter",
}


class FrameworkMissing(ImportError):
    """The framework is not importable in this Python."""


def load(framework):
    if framework not in MODULES:
        raise ValueError("unknown framework %r; allowed: %s" % (framework, ", ".join(MODULES)))
    try:
        return importlib.import_module("." + MODULES[framework], __name__)
    except ImportError as exc:
        import sys
        raise FrameworkMissing(
            "framework %r cannot be imported by %s (%s); run the harness with that framework's "
            "environment, e.g. .venvs/%s/bin/python -m workflow.bench run ..."
            % (framework, sys.executable, exc, ENV_OF.get(framework, framework))) from exc
