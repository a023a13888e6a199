"""Where the time of a training run goes, function by function (StuCrs and DeZero).

``python -m workflow.bench profile --framework stucrs --network mlp2 --data ... --out X.csv``
trains like ``run`` (same adapter, weights, batch order and test pass) while timing

* ``forward``: each ``Function`` call, by class (``Linear``, ``ReLU``, ...);
* ``backward``: each ``Function.backward``, by class;
* ``update``: ``Optimizer.update`` (all parameters);
* ``other``: the rest of the timed region (batch gathering, ``F.accuracy``, the Python loop).

Only the outermost call is counted: a function called inside another one's forward or backward
(DeZero's ``Linear.backward`` calls ``matmul``) is part of the caller's time, so the rows add up
to the wall time. The wrappers cost about a microsecond per call, so the ``other`` row of a
profile is a little larger than in an unwrapped run; time the framework with ``run``.

Writes ``X.csv`` (one row per phase and name) and ``X.md`` (the same as a Markdown table) atomically.
"""

import sys
import time
from collections import defaultdict
from pathlib import Path

from . import PROFILED, networks, record
from .runner import job_of, prepare_adapter, resolve_params

COLUMNS = ("network", "framework", "phase", "name", "calls", "total_s", "per_call_us", "share")


def _subclasses(base):
    found, stack = [], [base]
    while stack:
        for cls in stack.pop().__subclasses__():
            if cls not in found:
                found.append(cls)
                stack.append(cls)
    return found


class OpTimer:
    """Wraps ``Function.__call__``, every ``backward`` and ``Optimizer.update`` of ``lib`` while active."""

    def __init__(self, lib):
        self.lib = lib
        self.total = defaultdict(float)
        self.calls = defaultdict(int)
        self._depth = 0
        self._restore = []

    def _timed(self, phase, fn):
        timer = self

        def wrapper(obj, *args, **kwargs):
            if timer._depth:
                return fn(obj, *args, **kwargs)
            timer._depth += 1
            t0 = time.perf_counter()
            try:
                return fn(obj, *args, **kwargs)
            finally:
                key = (phase, type(obj).__name__)
                timer.total[key] += time.perf_counter() - t0
                timer.calls[key] += 1
                timer._depth -= 1

        return wrapper

    def _patch(self, cls, attr, phase):
        original = cls.__dict__[attr]
        setattr(cls, attr, self._timed(phase, original))
        self._restore.append((cls, attr, original))

    def __enter__(self):
        Function = self.lib.core.Function if hasattr(self.lib, "core") else self.lib.Function
        self._patch(Function, "__call__", "forward")
        for cls in [Function] + _subclasses(Function):
            if "backward" in cls.__dict__:
                self._patch(cls, "backward", "backward")
        self._patch(self.lib.optimizers.Optimizer, "update", "update")
        return self

    def __exit__(self, *exc):
        for cls, attr, original in reversed(self._restore):
            setattr(cls, attr, original)
        self._restore.clear()
        return False

    def rows(self, wall_s, network, framework):
        """Rows sorted by time, plus ``other`` (wall time not spent in any timed call)."""
        rows = []
        for (phase, name), total in sorted(self.total.items(), key=lambda kv: -kv[1]):
            calls = self.calls[(phase, name)]
            rows.append(dict(network=network, framework=framework, phase=phase, name=name,
                             calls=calls, total_s=total, per_call_us=total / calls * 1e6,
                             share=total / wall_s if wall_s > 0 else 0.0))
        other = max(wall_s - sum(self.total.values()), 0.0)
        rows.append(dict(network=network, framework=framework, phase="other",
                         name="loop, data, accuracy", calls=0, total_s=other, per_call_us=0.0,
                         share=other / wall_s if wall_s > 0 else 0.0))
        return rows


def to_csv(rows):
    return record.dict_rows_csv(COLUMNS, rows,
                                {"total_s": "%.6f", "per_call_us": "%.1f", "share": "%.4f"})


def to_markdown(rows, title):
    lines = ["# " + title, "",
             "| phase | function | calls | total [s] | per call [µs] | share |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        calls = str(r["calls"]) if r["calls"] else "–"
        per_call = "%.1f" % r["per_call_us"] if r["calls"] else "–"
        lines.append("| %s | %s | %s | %.3f | %s | %.1f %% |"
                     % (r["phase"], r["name"], calls, r["total_s"], per_call, 100 * r["share"]))
    return "\n".join(lines) + "\n"


def run_profile(args):
    from . import adapters

    if args.framework not in PROFILED:
        raise ValueError("profile works with %s (DeZero's Function classes), not %r"
                         % (", ".join(PROFILED), args.framework))
    spec = networks.get_spec(args.network)
    params = resolve_params(args, spec)
    job = job_of(args, args.framework)
    mod = adapters.load(args.framework)
    adapter, perms = prepare_adapter(args, mod, spec, params)
    epochs, batch_size, n_train = params["epochs"], params["batch_size"], params["train_size"]

    with OpTimer(mod.Adapter.lib) as timer:
        t0 = time.perf_counter()
        for epoch in range(epochs):
            for _ in adapter.train_epoch(perms[epoch], batch_size):
                pass
            for _ in adapter.test_epoch(batch_size):
                pass
        wall = time.perf_counter() - t0

    rows = timer.rows(wall, args.network, args.framework)
    title = ("Profile of %s: %d epoch(s), %d training examples, batch %d, %d thread(s); wall %.2f s"
             % (job["id"], epochs, n_train, batch_size, args.threads, wall))
    out = Path(args.out)
    md_path = out.with_suffix(".md")
    for path, text in ((out, to_csv(rows)), (md_path, to_markdown(rows, title))):
        record.atomic_write(path, lambda f, text=text: f.write(text))
    sys.stdout.write(to_markdown(rows, title))
    print("wrote %s and %s" % (out, md_path))
    return 0
