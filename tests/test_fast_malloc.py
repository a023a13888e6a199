"""stucrs.fast.malloc: glibc malloc set to reuse freed large arrays, only when asked.

``import stucrs`` must leave the process's allocator alone; ``stucrs.fast.tune_malloc()`` and the
benchmark harness's glibc environment variables set it. Each case runs in a fresh interpreter:
malloc settings belong to the process.
"""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="malloc tuning applies to glibc (Linux) only")

# A training step's allocation pattern in miniature: three 4 MiB temporaries live at once, then all
# are freed. Untuned glibc hands the freed top of the heap back to the OS each round (its trim
# threshold follows the largest freed block), so every round faults its pages in again.
_FAULTS = r"""
import json, resource, sys, numpy as np
import stucrs, stucrs.fast, stucrs.fast.malloc
if "tune" in sys.argv:
    stucrs.fast.tune_malloc()
def rounds(k):
    for _ in range(k):
        a = np.ones(1 << 20, np.float32); b = a * 2; c = b + a
        del a, b, c
rounds(3)  # warm up: the heap reaches its size
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(40)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults, "status": stucrs.fast.malloc.malloc_status()}))
"""


def _python(code, *args, **env_changes):
    env = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "GLIBC_TUNABLES")}
    env.update(env_changes)
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=str(REPO), env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r


@needs_glibc
def test_import_leaves_malloc_alone_and_tune_malloc_stops_the_page_faults():
    untouched = json.loads(_python(_FAULTS).stdout)
    tuned = json.loads(_python(_FAULTS, "tune").stdout)
    assert untouched["status"].startswith("default: stucrs.fast.tune_malloc() has not run"), untouched
    assert tuned["status"].startswith("tuned by stucrs.fast.tune_malloc: glibc "), tuned
    assert "mmap_threshold=33554432" in tuned["status"] and "trim_threshold=536870912" in tuned["status"]
    # 40 rounds of 3 x 4 MiB: untouched glibc faults every page in again (about 120 000 faults)
    assert untouched["faults"] > 20000, untouched
    assert tuned["faults"] < untouched["faults"] / 10, (tuned, untouched)


@needs_glibc
def test_the_harness_environment_variables_do_the_same():
    """The benchmark sets glibc's own variables before the process starts (workflow/bench/contract.py)."""
    env = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "536870912"}
    by_env = json.loads(_python(_FAULTS, **env).stdout)
    untouched = json.loads(_python(_FAULTS).stdout)
    assert by_env["faults"] < untouched["faults"] / 10, (by_env, untouched)


@pytest.mark.parametrize("kwargs, message", [
    ({"mmap_threshold": 0}, "mmap_threshold must be an integer number of bytes >= 1"),
    ({"mmap_threshold": 1.5}, "mmap_threshold must be an integer"),
    ({"trim_threshold": -1}, "trim_threshold must be an integer number of bytes >= 0"),
    ({"mmap_threshold": 64 << 20}, "above glibc's maximum"),
])
def test_bad_settings_are_refused_before_touching_malloc(kwargs, message):
    from stucrs.fast import malloc as memory
    before = memory.malloc_status()
    with pytest.raises(ValueError, match=message):
        memory.tune_malloc(**kwargs)
    assert memory.malloc_status() == before


def test_without_glibc_nothing_is_changed(monkeypatch):
    from stucrs.fast import malloc as memory
    monkeypatch.setattr(memory, "_glibc", lambda: (None, "the C library is not glibc (test)"))
    monkeypatch.setattr(memory, "_status", memory._status)
    assert memory.tune_malloc() is False
    assert memory.malloc_status() == "default: the C library is not glibc (test)"
