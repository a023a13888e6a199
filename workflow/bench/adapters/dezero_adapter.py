"""DeZero 0.0.13 (the book's own framework, unpatched): Model / L.Linear / L.Conv2d /
optimizers.SGD / DataLoader / functions, CuPy for the GPU."""

import dezero
import dezero.dataloaders  # noqa: F401
import dezero.datasets  # noqa: F401
import dezero.functions  # noqa: F401 - F.* used through lib.functions
import dezero.layers  # noqa: F401
import dezero.optimizers  # noqa: F401

from ._dezero_like import DezeroLikeAdapter, cupy_status

NAME = "dezero"


def version():
    return getattr(dezero, "__version__", "unknown")


def gpu_status():
    ok, msg = cupy_status()
    if ok and not dezero.cuda.gpu_enable:
        return False, "dezero.cuda.gpu_enable is False although " + msg
    return ok, msg


class Adapter(DezeroLikeAdapter):
    lib = dezero
