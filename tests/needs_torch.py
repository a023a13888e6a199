"""PyTorch for the tests that compare StuCrs with it (marked ``torch``).

The workspace environment holds no PyTorch; ``scripts/test.sh`` runs the ``torch``-marked tests in
the torch environment (``.venvs/torch``, which has stucrs and pytest) with ``STUCRS_REQUIRE_TORCH=1``,
so there a missing torch is an error, never a silent skip. Elsewhere (``pytest`` in the workspace)
they skip with this reason.
"""
import os

import pytest

REASON = ("PyTorch is not in this environment: the comparisons with PyTorch run in the torch "
          "environment (`bash scripts/test.sh` runs them there, or "
          "`.venvs/torch/bin/python -m pytest -m torch tests/`)")


def import_torch():
    try:
        import torch
    except ImportError:
        if os.environ.get("STUCRS_REQUIRE_TORCH") == "1":
            raise
        pytest.skip(REASON, allow_module_level=True)
    return torch
