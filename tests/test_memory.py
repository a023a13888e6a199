"""stucrs.memory: glibc malloc tuned at import so that freed large arrays are reused.

Each case runs in a fresh interpreter: malloc settings belong to the process, and the import-time
tuning reads the environment once.
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
import stucrs
def rounds(k):
    for _ in range(k):
        a = np.ones(1 << 20, np.float32); b = a * 2; c = b + a
        del a, b, c
rounds(3)  # warm up: the heap reaches its size
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(40)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults, "status": stucrs.memory.malloc_status()}))
"""


def _python(code, **env_changes):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("MALLOC_") or k in ("GLIBC_TUNABLES", "STUCRS_MALLOC_TUNING"))}
    env.update(env_changes)
    r = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r


def _status(**env_changes):
    r = _python("import stucrs; print(stucrs.memory.malloc_status())", **env_changes)
    return r.stdout.strip(), r.stderr


@needs_glibc
def test_import_tunes_malloc_and_says_so():
    status, _ = _status()
    assert status.startswith("tuned by stucrs: glibc ")
    assert "mmap_threshold=33554432" in status and "trim_threshold=536870912" in status


@needs_glibc
def test_tuning_stops_the_page_faults_of_recycled_arrays():
    tuned = json.loads(_python(_FAULTS).stdout)
    untuned = json.loads(_python(_FAULTS, STUCRS_MALLOC_TUNING="0").stdout)
    assert tuned["status"].startswith("tuned") and untuned["status"] == "not tuned: STUCRS_MALLOC_TUNING=0"
    # 40 rounds x 3 arrays x 1024 pages would fault ~120 000 times; reused memory faults ~never
    assert untuned["faults"] > 40 * 1024, untuned
    assert tuned["faults"] < untuned["faults"] / 20, (tuned, untuned)


@pytest.mark.parametrize("value", ["0", "off", "False", "no"])
def test_switched_off_by_the_environment(value):
    status, _ = _status(STUCRS_MALLOC_TUNING=value)
    assert status == "not tuned: STUCRS_MALLOC_TUNING=%s" % value


def test_a_value_not_understood_warns_and_leaves_malloc_alone():
    status, err = _status(STUCRS_MALLOC_TUNING="maybe")
    assert status == "not tuned: STUCRS_MALLOC_TUNING='maybe' is not understood"
    assert "RuntimeWarning" in err and "use 1 (tune glibc malloc, the default) or 0" in err


@pytest.mark.parametrize("env", [{"MALLOC_TOP_PAD_": "1048576"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"}])
def test_malloc_settings_of_the_user_win(env):
    status, _ = _status(**env)
    assert status == "not tuned: malloc already configured by %s" % next(iter(env))


@pytest.mark.parametrize("kwargs, message", [
    ({"mmap_threshold": 0}, "mmap_threshold must be an integer number of bytes >= 1"),
    ({"mmap_threshold": 1.5}, "mmap_threshold must be an integer"),
    ({"trim_threshold": -1}, "trim_threshold must be an integer number of bytes >= 0"),
    ({"mmap_threshold": 64 << 20}, "above glibc's maximum"),
])
def test_bad_settings_are_refused_before_touching_malloc(kwargs, message):
    from stucrs import memory
    before = memory.malloc_status()
    with pytest.raises(ValueError, match=message):
        memory.tune_malloc(**kwargs)
    assert memory.malloc_status() == before


def test_without_glibc_nothing_is_changed(monkeypatch):
    from stucrs import memory
    monkeypatch.setattr(memory, "_glibc", lambda: (None, "the C library is not glibc (test)"))
    monkeypatch.setattr(memory, "_status", memory._status)
    assert memory.tune_malloc() is False
    assert memory.malloc_status() == "not tuned: the C library is not glibc (test)"
