"""What StuCrs's gap to the GEMM floor is made of: training steps with one part made free at a time.

``python -m workflow.bench gap --network mlp1 --data ... --out results/gap/mlp1.csv`` trains the
MLP like ``run`` (same adapter, weights, batch order) and times single training steps, in blocks of
``--steps`` steps that take turns within one process (``--rounds`` rounds, the order reversed every
other round, so that a slow phase of a shared machine hits every variant alike):

* ``stucrs``: the real step (gather the batch, forward, loss, accuracy, backward, SGD update);
* ``free bias``: the same step where the bias costs nothing: the forward's ``+ b`` is left out and
  the bias gradient (a column sum) is replaced by a view of one row (the bias's update stays);
* ``free relu``: ReLU and its gradient are the identity (no work, no new array);
* ``free gather``: the loader hands out one batch gathered once, from the cache, instead of
  gathering 100 rows of the training set each step;
* the combinations ``free bias+relu`` and ``free bias+relu+gather``;
* ``floor``: one step of the GEMM floor's products (``floor``'s operands) in the same process.

For the CNN (``--network cnn``) the parts are those around its convolution:

* ``free relu``: as above (both ReLUs, the convolution's and the dense layer's);
* ``free pooling``: max pooling hands out arrays of the right shapes (and memory layout) made once,
  forward and backward;
* ``free dropout mask``: dropout multiplies by a mask drawn once instead of drawing DeZero's mask
  (``np.random.rand(*x.shape) > ratio``, float64) every step: the price of drawing that mask;
* ``free dropout``: dropout and its gradient are the identity;
* ``free relu+pooling+dropout``: all three: what is left is the convolution's GEMMs and im2col, the
  dense layers, the loss and the update, i.e. about what a perfect fused kernel for the
  convolution's element-wise tail would still take;
* ``free relu+pooling+masking``: the same, except that dropout still draws DeZero's mask every step
  the way DeZero does (``np.random.rand`` in this process; only multiplying by the mask, forward
  and backward, is free): about the least a step takes while it draws the book's mask that way,
  however its ReLU, pooling and dropout are computed (``mask_bound``).

The SGD learning rate is set to 1e-12 for all variants: the weights barely move (by 1e-12 times
the gradient), so that every variant computes on practically the same numbers and a free ReLU
cannot wreck them, while every product and update is still computed (a learning rate of 0 would
let the BLAS skip the weight update's product).
A free part's saving is about the most any kernel could save there: the time left with a part free
is about what even a perfect fused kernel for that part would still take (only about the part's
own ``Function`` node, a microsecond or two, would go too; chapter 16, section 14).

Writes ``X.csv`` (one row per variant: median µs per step, ratio to the floor, saving against the
real step), ``X.md`` (the same as a Markdown table) and ``X.json`` (rows, parameters and the
environment record of ``run``), each atomically. Only full batches are timed: a last, smaller batch
of the training set is left out of the batch order. StuCrs only: the free parts are subclasses of
StuCrs's fast ``Linear`` / ``ReLU`` / ``Pooling`` / ``Dropout`` put in through the fast-path seam
(``stucrs.fast.replaced``) for the duration of a block, and the fixed batch replaces this harness's
own loader; nothing of StuCrs is patched.
"""

import itertools
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import contract, networks, record
from .data import DataError
from .floor import _Operands
from .runner import data_sha256, prepare_adapter, resolve_params

COLUMNS = ("network", "variant", "free", "per_step_us", "over_floor", "saving_us", "rounds", "steps")
VARIANTS = (("stucrs", ()), ("free bias", ("bias",)), ("free relu", ("relu",)),
            ("free bias+relu", ("bias", "relu")), ("free gather", ("gather",)),
            ("free bias+relu+gather", ("bias", "relu", "gather")), ("floor", None))
CNN_VARIANTS = (("stucrs", ()), ("free relu", ("relu",)), ("free pooling", ("pooling",)),
                ("free dropout mask", ("mask",)), ("free dropout", ("dropout",)),
                ("free relu+pooling+dropout", ("relu", "pooling", "dropout")),
                ("free relu+pooling+masking", ("relu", "pooling", "masking")), ("floor", None))

STILL_LR = 1e-12  # the weights barely move; not 0, which lets gemm skip the update's product
WARMUP_STEPS = 100  # StuCrs's matmul plan measures the first 65 calls of each large shape


def variants_of(network):
    """(name, free parts) of the variants timed for ``network`` (``floor``: parts None)."""
    return CNN_VARIANTS if network == "cnn" else VARIANTS


def free_parts(lib):
    """{part: {book class: the free subclass of its fast implementation}} for ``bias``, ``relu``,
    ``pooling``, ``mask``, ``dropout`` and ``masking``."""
    from stucrs.fast import conv as fast_conv, functions as fast_functions
    from stucrs.utils import get_conv_outsize

    F = lib.functions
    made = {}  # arrays made once per (role, shape, dtype, layout): the free parts hand them out

    def made_once(role, like, shape):
        """Zeros of ``shape`` in the memory layout of ``like`` (zeros_like keeps it for 4-D)."""
        key = (role, shape, like.dtype, like.strides)
        if key not in made:
            made[key] = np.zeros_like(like, shape=shape)
        return made[key]

    class LinearWithFreeBias(fast_functions.Linear):
        def forward(self, x, W, b=None):
            return x @ W

        def backward(self, gy):
            x, W = self.inputs[0], self.inputs[1]
            b = self.inputs[2] if len(self.inputs) == 3 else None
            gx, gW, _ = fast_functions.linear_grads(x, W, None, gy.data)
            if b is None:
                return gx, gW
            return gx, gW, (lib.Variable(gy.data[0]) if b.requires_grad else None)

    class FreeReLU(fast_functions.ReLU):
        def forward(self, x):
            return x

        def backward(self, gy):
            return gy

    class FreePooling(fast_conv.Pooling):
        def forward(self, x):
            n, c, h, w = x.shape
            (kh, kw), (sy, sx), (ph, pw) = self.kernel_size, self.stride, self.pad
            shape = (n, c, get_conv_outsize(h, kh, sy, ph), get_conv_outsize(w, kw, sx, pw))
            self.x_grad = made_once("pooling grad", x, x.shape)
            return made_once("pooled", x, shape)

        def backward(self, gy):
            return lib.Variable(self.x_grad)

    class DropoutWithFreeMask(fast_functions.Dropout):
        def draw_mask(self, shape):  # the rest of the step is the real dropout's
            key = ("mask", shape, self.dropout_ratio)
            if key not in made:  # one draw, from a generator of its own (the global one untouched)
                made[key] = np.random.default_rng(0).random(shape) > self.dropout_ratio
            return made[key]

    class FreeDropout(fast_functions.Dropout):
        def forward(self, x):
            return x

        def backward(self, gy):
            return gy

    class DropoutWithFreeMasking(FreeDropout):
        def forward(self, x):  # the book's mask is drawn (the global generator moves on), not used
            self.draw_mask(x.shape)
            return x

    return {"bias": {F.Linear: LinearWithFreeBias}, "relu": {F.ReLU: FreeReLU},
            "pooling": {lib.functions_conv.Pooling: FreePooling},
            "mask": {F.Dropout: DropoutWithFreeMask}, "dropout": {F.Dropout: FreeDropout},
            "masking": {F.Dropout: DropoutWithFreeMasking}}


@contextmanager
def made_free(adapter, lib, parts, fixed_batch):
    """While the block runs: the bias / ReLU through the seam's hook, the batch gathering by
    handing out one batch (this harness's loader, not StuCrs's)."""
    from stucrs import fast

    substitutes = {}
    for part, classes in free_parts(lib).items():
        if part in parts:
            substitutes.update(classes)
    if "gather" in parts:
        adapter._batches = lambda dataset, batch_size, index: itertools.repeat(fixed_batch)
    try:
        with fast.replaced(substitutes):
            yield
    finally:
        adapter.__dict__.pop("_batches", None)


def _endless_steps(adapter, perm, batch_size):
    """One training step per ``next()``, epoch after epoch over the same batch order.

    Only the full batches of an epoch: the epoch is cut before its last, smaller batch (if any),
    so that every timed step does the same work.
    """
    full_batches = len(perm) // batch_size
    while True:
        yield from itertools.islice(adapter.train_epoch(perm, batch_size), full_batches)


def _timed_block(step, steps):
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(adapter, lib, spec, perm, batch_size, rounds, steps, seed):
    """{variant: [median seconds per step of each round]} for the network's variants."""
    variants = variants_of(spec.name)
    adapter.optimizer.lr = STILL_LR
    stream = _endless_steps(adapter, perm, batch_size)
    fixed_batch = next(iter(adapter._batches(adapter.train_set, batch_size, perm)))  # the first batch
    floor_ops = _Operands(np.asarray, spec, batch_size, np.random.default_rng(seed))

    def train_step():
        next(stream)

    for _ in range(WARMUP_STEPS):
        train_step()
    floor_ops.train()
    per_round = {name: [] for name, _ in variants}
    for r in range(rounds):
        for name, parts in (variants if r % 2 == 0 else variants[::-1]):
            if parts is None:
                per_round[name].append(_timed_block(floor_ops.train, steps))
                continue
            with made_free(adapter, lib, parts, fixed_batch):
                per_round[name].append(_timed_block(train_step, steps))
    return per_round


def rows_of(per_round, network, rounds, steps):
    med = {name: statistics.median(times) for name, times in per_round.items()}
    rows = []
    for name, parts in variants_of(network):
        rows.append(dict(network=network, variant=name,
                         free="" if parts is None else "+".join(parts) or "nothing",
                         per_step_us=med[name] * 1e6, over_floor=med[name] / med["floor"],
                         saving_us=(med["stucrs"] - med[name]) * 1e6, rounds=rounds, steps=steps))
    return rows


def to_csv(rows):
    return record.dict_rows_csv(COLUMNS, rows,
                                {"per_step_us": "%.1f", "over_floor": "%.4f", "saving_us": "%.1f"})


def mask_bound(rows):
    """The row of ``free relu+pooling+masking`` (about the least a CNN step takes while it draws
    DeZero's dropout mask as DeZero does), or None for a network without it."""
    return next((r for r in rows if r["free"] == "relu+pooling+masking"), None)


def to_markdown(rows, title, env):
    lines = ["# " + title, "",
             "| variant | per step [µs] | × floor | saved against stucrs [µs] |",
             "| --- | ---: | ---: | ---: |"]
    for r in rows:
        saving = "–" if r["variant"] in ("stucrs", "floor") else "%.0f" % r["saving_us"]
        lines.append("| %s | %.0f | %.3f | %s |"
                     % (r["variant"], r["per_step_us"], r["over_floor"], saving))
    bound = mask_bound(rows)
    if bound is not None:
        lines += ["", "`%s`: ReLU, pooling and multiplying by dropout's mask cost nothing, but the "
                  "mask is still drawn with `np.random.rand` as DeZero draws it. As long as a step "
                  "draws the book's mask that way, it takes about %.2f × the floor or more here, "
                  "however its ReLU, pooling and dropout are computed."
                  % (bound["variant"], bound["over_floor"])]
    blas = ", ".join("%s %s (%s)" % (b.get("internal_api"), b.get("version"), b.get("architecture"))
                     for b in env.get("blas") or [] if b.get("user_api") == "blas") or "unknown"
    lines += ["", "StuCrs %s, NumPy %s, BLAS %s, CPU %s, %s thread(s), commit %s; the whole "
              "environment is in the JSON beside this file."
              % (env.get("framework_version"), env.get("numpy"), blas, env.get("cpu_model"),
                 env.get("threads"), contract.source_label(env))]
    return "\n".join(lines) + "\n"


def run_gap(args):
    from . import adapters

    spec = networks.get_spec(args.network)
    params = resolve_params(args, spec)
    params["epochs"] = 1  # one batch order, walked again and again
    mod = adapters.load("stucrs")
    adapter, perms = prepare_adapter(args, mod, spec, params)
    lib = mod.Adapter.lib
    batch_size = params["batch_size"]
    if params["train_size"] < batch_size:
        raise DataError("gap needs at least one full batch of training examples, but there are %d "
                        "for batch size %d: raise --train-size or lower --batch-size"
                        % (params["train_size"], batch_size))
    per_round = measure(adapter, lib, spec, perms[0], batch_size, args.rounds, args.steps, args.seed)
    rows = rows_of(per_round, args.network, args.rounds, args.steps)
    env = record.environment(mod.version(), args.threads, data_sha256(args.data))
    title = ("Gap of StuCrs to the GEMM floor, %s: batch %d, %d round(s) of %d steps per variant, "
             "%d thread(s)" % (args.network, batch_size, args.rounds, args.steps, args.threads))
    md = to_markdown(rows, title, env)
    out = Path(args.out)
    md_path, json_path = out.with_suffix(".md"), out.with_suffix(".json")
    # what was used: the learning rate that holds the weights, one batch order, no test pass
    params.update(lr=STILL_LR, rounds=args.rounds, steps=args.steps)
    for unused in ("epochs", "test_size"):
        params.pop(unused, None)
    # the CSV last: it is the rule's first output, so a run cut short leaves no CSV behind
    record.atomic_write_json(json_path, {"network": args.network, "params": params, "rows": rows,
                                         "mask_bound": mask_bound(rows), "environment": env})
    record.atomic_write(md_path, lambda f: f.write(md))
    record.atomic_write(out, lambda f: f.write(to_csv(rows)))
    sys.stdout.write(md)
    print("wrote %s, %s and %s" % (out, md_path, json_path))
    return 0
