"""Which OpenBLAS kernel a benchmark run multiplies with (``--openblas-kernel``).

OpenBLAS picks its compute kernels from the CPU when it is loaded, unless ``OPENBLAS_CORETYPE``
(with ``OPENBLAS_L2_SIZE``) names one. Machines and images set that override so that an *old*
OpenBLAS, which does not know a new CPU, does not fall back to a slow generic kernel (or misdetect
it). A current OpenBLAS knows the CPU better than the override: on an AVX-512 machine with
``OPENBLAS_CORETYPE=Haswell`` inherited, NumPy 2's matrix products run about 1.5 times slower than
with OpenBLAS's own choice (SkylakeX), while DeZero's OpenBLAS 0.3.20 on the same machine knows no
better kernel than the override (it falls back to Barcelona). Each environment therefore gets the
better of the two:

* ``auto`` (default): when an override is set, a short probe process of the same interpreter loads
  NumPy without it, asks threadpoolctl which kernel OpenBLAS chose, and checks one small product
  against a reference computed without BLAS. If that kernel uses a newer instruction set than
  the override's (AVX-512 over AVX2, ...) and multiplies correctly, the override is dropped for
  this run; otherwise it is kept.
* ``inherit``: the environment as it is.
* ``native``: always OpenBLAS's own choice (the override variables are dropped).

This has to happen before NumPy is imported (OpenBLAS reads the variables once, when it loads).
What was decided is recorded in every result (``environment.openblas_kernel``), and the loaded
kernel itself in ``environment.blas[].architecture``.
"""

import json
import os
import subprocess
import sys

MODES = ("auto", "inherit", "native")
OVERRIDE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# OpenBLAS's core names (as ``openblas_get_corename`` spells them) by the newest instruction set
# their kernels use: 1 SSE2/SSE3, 2 SSE4.2, 3 AVX, 4 AVX2 + FMA, 5 AVX-512.
_GENERATION = {
    **dict.fromkeys(("katmai", "coppermine", "northwood", "prescott", "banias", "core2", "penryn",
                     "dunnington", "atom", "nano", "athlon", "opteron", "opteron_sse3",
                     "barcelona", "bobcat"), 1),
    "nehalem": 2,
    **dict.fromkeys(("sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"), 3),
    **dict.fromkeys(("haswell", "zen", "skylake"), 4),
    **dict.fromkeys(("skylakex", "cooperlake", "sapphirerapids"), 5),
}

# Run in the probe process: OpenBLAS's kernel name, and whether a product through it is right.
_PROBE = r"""
import json, numpy as np
from threadpoolctl import threadpool_info
names = [d.get("architecture") for d in threadpool_info() if d.get("internal_api") == "openblas"]
rng = np.random.default_rng(0)
a = rng.standard_normal((67, 130)).astype(np.float32)
b = rng.standard_normal((130, 45)).astype(np.float32)
ref = (a.astype(np.float64)[:, :, None] * b.astype(np.float64)[None, :, :]).sum(axis=1)
err = float(np.abs(a @ b - ref).max() / np.abs(ref).max())
print(json.dumps({"kernels": names, "relative_error": err}))
"""
_PROBE_TOLERANCE = 1e-5  # float32 products of length 130: ~1e-7 when right, O(1) when broken


def _inherited():
    """The override variables set in this process's environment."""
    return {k: os.environ[k] for k in OVERRIDE_VARS if k in os.environ}


def generation(kernel):
    """The instruction-set generation of an OpenBLAS core name (None when unknown)."""
    return _GENERATION.get(str(kernel).strip().lower()) if kernel else None


def probe_own_kernel(python=None, timeout=120):
    """(kernel, why): OpenBLAS's own choice in ``python`` without the override; kernel None if
    it could not be had or does not multiply correctly (``why`` says which)."""
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDE_VARS}
    env["OPENBLAS_NUM_THREADS"] = "1"
    try:
        out = subprocess.run([python or sys.executable, "-c", _PROBE], capture_output=True,
                             text=True, timeout=timeout, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, "the probe did not run (%s)" % exc
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return None, "the probe failed with exit code %d (%s)" % (out.returncode, last)
    try:
        found = json.loads(out.stdout.strip().splitlines()[-1])
        kernels, err = found["kernels"], float(found["relative_error"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None, "the probe printed no result (%r)" % out.stdout[-200:]
    if not kernels:
        return None, "NumPy here does not use OpenBLAS"
    if not err <= _PROBE_TOLERANCE:
        return None, ("OpenBLAS's own kernel %s multiplies wrongly (relative error %.3g)"
                      % (kernels[0], err))
    return kernels[0], "OpenBLAS's own choice is %s" % kernels[0]


def choose(mode, python=None, probe=probe_own_kernel, numpy_loaded=None):
    """Apply ``mode`` to ``os.environ`` before NumPy loads; returns the record of the decision.

    ``probe(python)`` gives OpenBLAS's own choice (``probe_own_kernel``); ``numpy_loaded``
    (default: whether NumPy is imported in this process) means the choice comes too late."""
    if mode not in MODES:
        raise ValueError("openblas kernel mode %r is not one of %s" % (mode, ", ".join(MODES)))
    inherited = _inherited()
    decision = {"mode": mode, "inherited": inherited, "own_kernel": None, "override_kept": True}

    def drop(why):
        for k in OVERRIDE_VARS:
            os.environ.pop(k, None)
        decision.update(override_kept=False, why=why)
        return decision

    if not inherited:
        decision.update(override_kept=False, why="no override set: OpenBLAS chooses its kernel")
        return decision
    if numpy_loaded is None:
        numpy_loaded = "numpy" in sys.modules
    if numpy_loaded:  # OpenBLAS is loaded already; the variables no longer matter
        decision["why"] = "NumPy was imported before the harness could choose; nothing changed"
        return decision
    if mode == "inherit":
        decision["why"] = "--openblas-kernel inherit: the override is kept"
        return decision
    if mode == "native":
        return drop("--openblas-kernel native: OpenBLAS chooses its kernel")
    own, why = probe(python)
    decision["own_kernel"] = own
    forced = inherited.get("OPENBLAS_CORETYPE")
    if own is None:
        decision["why"] = why + "; the override is kept"
        return decision
    if forced is None:  # only OPENBLAS_L2_SIZE: a cache size, no kernel; leave it as it is
        decision["why"] = "no OPENBLAS_CORETYPE set, only %s; kept" % ", ".join(inherited)
        return decision
    g_own, g_forced = generation(own), generation(forced)
    if g_own is not None and (g_forced is None or g_own > g_forced):
        return drop("OpenBLAS's own choice %s uses a newer instruction set than "
                    "OPENBLAS_CORETYPE=%s: override dropped" % (own, forced))
    decision["why"] = ("OpenBLAS's own choice %s is no newer than OPENBLAS_CORETYPE=%s: "
                       "the override is kept" % (own, forced))
    return decision


_current = None


def apply(mode, python=None):
    """``choose`` once per process and remember it for ``current()`` (the result's record)."""
    global _current
    _current = choose(mode, python)
    return _current


def current():
    """What ``apply`` decided in this process, or what the environment says when it was not run."""
    if _current is not None:
        return dict(_current)
    inherited = _inherited()
    return {"mode": None, "inherited": inherited, "own_kernel": None,
            "override_kept": bool(inherited), "why": "not chosen by the harness CLI"}
