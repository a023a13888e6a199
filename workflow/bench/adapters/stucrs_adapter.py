"""StuCrs: the same code as DeZero's (``Model``, ``L.Linear`` / ``L.Conv2d``, ``F.relu``,
``F.pooling``, ``F.dropout``, ``F.softmax_cross_entropy``, ``optimizers.SGD``, ``DataLoader``,
``no_grad`` / ``test_mode``), CuPy through ``stucrs.cuda`` for the GPU."""

import stucrs
import stucrs.dataloaders  # noqa: F401
import stucrs.datasets  # noqa: F401
import stucrs.functions  # noqa: F401
import stucrs.layers  # noqa: F401
import stucrs.optimizers  # noqa: F401

from ._dezero_like import DezeroLikeAdapter, cupy_status

NAME = "stucrs"
stucrs.Config.fast = True  # the stucrs row is StuCrs with its fast paths, whatever STUCRS_FAST says


def version():
    v = getattr(stucrs, "__version__", None)
    if v:
        return v
    try:
        from importlib.metadata import version as dist_version
        return dist_version("stucrs")
    except Exception:  # noqa: BLE001
        return "unknown"


def gpu_status():
    ok, msg = cupy_status()
    if ok and not getattr(stucrs.cuda, "gpu_enable", False):
        return False, "stucrs.cuda.gpu_enable is False although " + msg
    return ok, msg


class Adapter(DezeroLikeAdapter):
    lib = stucrs
