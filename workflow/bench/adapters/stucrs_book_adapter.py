"""StuCrs (book): StuCrs with its fast paths switched off (``Config.fast = False``, as
``STUCRS_FAST=0``): only the book's code of ``core.py``, ``functions.py``, ``optimizers.py`` runs,
so the distance to the ``stucrs`` row is what ``stucrs/fast`` buys. CPU only."""

import stucrs

from . import stucrs_adapter
from ._dezero_like import DezeroLikeAdapter

NAME = "stucrs-book"
stucrs.Config.fast = False  # read when each Function and the optimizer are made: set before any

version = stucrs_adapter.version


def gpu_status():
    return False, "StuCrs (book) is a CPU variant: it shows what StuCrs's fast paths buy on the CPU"


class Adapter(DezeroLikeAdapter):
    lib = stucrs
