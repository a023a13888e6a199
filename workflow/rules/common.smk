# Helpers shared by the workflow files: configuration checks, the job list, paths and arguments.
# Only functions and constants live here (no rules), see `snakemake --lint`.

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

sys.path.insert(0, str(Path(workflow.basedir)))
from workflow.bench.contract import (  # the names every part agrees on, defined once
    CPU_ONLY,
    DEVICES,
    ENV_OF,
    FRAMEWORKS,
    LABELS,
    MNIST_FILES,
    NETWORKS,
    NUMPY_NETWORKS,
    TIMELINE_COLUMNS,
)

TIMELINE_HEADER = ",".join(TIMELINE_COLUMNS)
# Framework whose environment (NumPy/BLAS) times the GEMM floor.
FLOOR_ENV = ENV_OF["floor"]


def is_dry_run(argv=None):
    """True for a Snakemake invocation that runs no job (dry run, lint, report, listings, touch):
    the workflow object does not know this yet while the Snakefile is read."""
    import re

    argv = sys.argv[1:] if argv is None else argv
    if "--report-after-run" in argv:  # a real run that writes its report afterwards
        argv = [a for a in argv if a.split("=", 1)[0] != "--report"]
    no_jobs = (
        "--dry-run",
        "--dryrun",
        "--lint",
        "--report",
        "--summary",
        "--detailed-summary",
        "--list",
        "--lt",
        "--lc",
        "--li",
        "--lp",
        "--list-untracked",
        "--dag",
        "--rulegraph",
        "--filegraph",
        "--d3dag",
        "--unlock",
        "--cleanup-metadata",
        "--cm",
        "--touch",
        "--containerize",
        "--generate-unit-tests",
    )
    for a in argv:
        flag = a.split("=", 1)[0]
        if flag in no_jobs or (flag.startswith("--dry") and len(flag) > 5):
            return True
        # short flags: -n, -np, -S, -D, -l, -t (a cluster of boolean letters, not -d/-s with a value)
        if (
            re.fullmatch(r"-[A-Za-z]+", a)
            and a[1] not in "dsjcCT"
            and set(a[1:]) & set("nSDlt")
        ):
            return True
    return False


def drop_bad_prepared(npz="resources/mnist_prepared.npz", dry_run=False):
    """A prepared-data file that its sidecar does not vouch for (truncated, changed, or left by an
    interrupted job) is removed with its sidecar, so that this run prepares it anew (a dry run only
    says so)."""
    import json

    npz, sidecar = Path(npz), Path(npz).with_suffix(".json")
    if not npz.exists():
        return False
    try:
        expected = json.loads(sidecar.read_text(encoding="utf-8")).get("npz_sha256")
    except (OSError, ValueError):
        expected = None
    h = hashlib.sha256()
    with open(npz, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    if expected == h.hexdigest():
        return False
    print(
        "StuCrs pipeline: %s does not match its sidecar %s (truncated or changed); %s"
        % (
            npz,
            sidecar,
            (
                "a real run removes both and prepares them again"
                if dry_run
                else "removing both so that rule prepare makes them again"
            ),
        ),
        file=sys.stderr,
    )
    if dry_run:
        return True
    npz.unlink()
    if sidecar.exists():
        sidecar.unlink()
    return True


def results_path(path):
    """results/RUN_NAME/PATH of this configuration (see results_dir)."""
    return "%s/%s" % (results_dir(config), path)


def mnist_source(cfg):
    """Where the MNIST files come from (the MLflow dataset input's source)."""
    if cfg.get("mnist_dir"):
        return {"local_dir": str(Path(cfg["mnist_dir"]).resolve())}
    return {"mirrors": list(cfg["mnist"]["mirrors"])}


def results_dir(cfg):
    """results/RUN_NAME: every file a run writes (runs, summary, figures, report, logs) goes there,
    so that presets never overwrite each other; results/mlflow.db is one store for all of them.
    """
    return "results/%s" % cfg["run_name"]


def _path_of(error):
    text = ""
    for part in error.absolute_path:
        text += (
            "[%d]" % part
            if isinstance(part, int)
            else (".%s" % part if text else str(part))
        )
    return text or "(top level)"


def _describe(error):
    """One readable line for a jsonschema error: the key, the problem, the allowed values."""
    key = _path_of(error)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = (
            sorted(set(error.instance) - set(allowed))
            if isinstance(error.instance, dict)
            else []
        )
        where = "top level" if key == "(top level)" else "'%s'" % key
        return "unknown key(s) %s at %s; allowed keys: %s" % (
            ", ".join(repr(e) for e in extra),
            where,
            ", ".join(allowed),
        )
    if error.validator == "enum":
        return "%s: %r is not allowed; allowed values: %s" % (
            key,
            error.instance,
            ", ".join(repr(v) for v in error.validator_value),
        )
    if error.validator == "propertyNames":
        return "%s: %s" % (key, error.message)
    if error.validator == "type":
        return "%s: %r has the wrong type; expected %s" % (
            key,
            error.instance,
            " or ".join(
                error.validator_value
                if isinstance(error.validator_value, list)
                else [error.validator_value]
            ),
        )
    return "%s: %s" % (key, error.message)


def normalise_config(cfg):
    """`--config gpu=true` arrives as the string 'true': turn such words into booleans."""
    words = {"true": True, "yes": True, "false": False, "no": False}
    for key in ("gpu", "floor", "smoke_test"):
        value = cfg.get(key)
        if isinstance(value, str) and value.strip().lower() in words:
            cfg[key] = words[value.strip().lower()]
    return cfg


def check_config(cfg, schema_path):
    """Validate with readable messages (key path + allowed values) before Snakemake's own check."""
    with open(schema_path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(
        validator_cls(schema).iter_errors(cfg), key=lambda e: list(e.absolute_path)
    )
    lines = []
    for err in errors:
        leaves = [err]
        if err.context:  # anyOf/oneOf: report the innermost causes
            leaves = sorted(err.context, key=lambda e: list(e.absolute_path))
        for leaf in leaves:
            line = _describe(leaf)
            if line not in lines:
                lines.append(line)
    for variant in cfg.get("variants") or []:
        if (
            isinstance(variant, dict)
            and variant.get("framework") in CPU_ONLY
            and variant.get("device") == "gpu"
        ):
            fw = variant["framework"]
            lines.append(
                "variants: %s (%s) runs on the CPU only; use {framework: %s, device: cpu}"
                % (fw, LABELS[fw], fw)
            )
    for net in cfg.get("networks") or []:
        if net in NETWORKS and net not in (cfg.get("network_params") or {}):
            lines.append(
                "network_params: no entry for network %r listed in 'networks'" % net
            )
    if lines:
        raise ValueError(
            "invalid configuration (checked against %s):\n  - %s"
            % (Path(schema_path).name, "\n  - ".join(lines))
        )


def gpu_probe(venv_dir):
    """(found, how): nvidia-smi listing a GPU, else CuPy in the stucrs environment."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "-L"], capture_output=True, text=True, timeout=20
            )
            if out.returncode == 0 and "GPU" in out.stdout:
                return True, "nvidia-smi: %s" % out.stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError):
            pass
    py = Path(venv_dir, "stucrs", "bin", "python")
    if py.exists():
        code = "import cupy; n = cupy.cuda.runtime.getDeviceCount(); print(n); assert n > 0"
        try:
            out = subprocess.run(
                [str(py), "-c", code], capture_output=True, text=True, timeout=60
            )
            if out.returncode == 0:
                return True, "CuPy sees %s device(s)" % out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return False, "no nvidia-smi GPU and no working CuPy"


def active_variants(cfg):
    """The variants to plan, and a note about GPU variants left out (or None)."""
    variants = [(v["framework"], v["device"]) for v in cfg["variants"]]
    gpu_wanted = [v for v in variants if v[1] == "gpu"]
    if not gpu_wanted:
        return variants, None
    mode = cfg.get("gpu", "auto")
    if mode is True:
        return variants, None
    if mode is False:
        why = "gpu: false in the configuration"
    else:
        found, why = gpu_probe(cfg.get("venv_dir", ".venvs"))
        if found:
            return variants, None
    left_out = ", ".join("%s-%s" % v for v in gpu_wanted)
    note = (
        "StuCrs pipeline: GPU variants left out of the DAG (%s): %s. "
        "Set `--config gpu=true` to plan them anyway." % (why, left_out)
    )
    return [v for v in variants if v[1] != "gpu"], note


def job_id(network, framework, device, repeat):
    return "%s-%s-%s-r%s" % (network, framework, device, repeat)


def all_job_ids(cfg, variants):
    """Every network x variant x repeat; the NumPy reference only for the dense networks."""
    return [
        job_id(net, fw, dev, r)
        for net in cfg["networks"]
        for fw, dev in variants
        if fw != "numpy" or net in NUMPY_NETWORKS
        for r in range(cfg["repeats"])
    ]


def default_threads(cfg):
    if cfg.get("threads"):
        return int(cfg["threads"])
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def bench_args(cfg, network, epochs=None, train_size=None):
    """Harness options shared by `run`, `floor` and `profile` (threads and repeat are added by the
    rule); `epochs` / `train_size` replace the network's and the configuration's when given.
    """
    hp = cfg["network_params"][network]
    args = [
        "--epochs",
        epochs or hp["epochs"],
        "--batch-size",
        hp["batch_size"],
        "--lr",
        hp["lr"],
        "--seed",
        cfg.get("seed", 0),
        "--openblas-kernel",
        cfg.get("openblas_kernel", "auto"),
        "--malloc",
        cfg.get("malloc", "tuned"),
    ]
    train_size = train_size or cfg.get("train_size")
    if train_size:
        args += ["--train-size", train_size]
    if cfg.get("test_size"):
        args += ["--test-size", cfg["test_size"]]
    return " ".join(str(a) for a in args)


def paired_floor_args(cfg, framework, device):
    """`--paired-floor-epochs K` for the CPU runs in the floor's environment (StuCrs, NumPy by hand):
    a floor epoch inside the run's process after each of its last K epochs, so that each epoch's
    ratio to the floor is measured at the machine's speed of that moment (`paired_floor_epochs`,
    0 turns it off)."""
    k = int(cfg.get("paired_floor_epochs", 5))
    if k <= 0 or device != "cpu" or ENV_OF.get(framework, framework) != FLOOR_ENV:
        return ""
    return "--paired-floor-epochs %d" % k


def repeat_round(wildcards):
    """Priority of a timed job: repeat 0 of every variant first, then repeat 1, ... (higher runs
    first). The repeats of one variant are so spread over the whole run, and a slow phase of the
    machine costs a variant at most one of its repeats instead of several back to back.
    """
    return -int(wildcards.repeat)


def profile_args(cfg, network):
    """Harness options of the `profile` job: the run's options with the profile's epochs and size."""
    prof = cfg.get("profile") or {}
    return bench_args(
        cfg, network, epochs=prof.get("epochs", 1), train_size=prof.get("train_size")
    )


def profile_targets(cfg, variants):
    """results/RUN/profile/NETWORK-FRAMEWORK.{csv,md} for the profiled frameworks that run on the CPU."""
    frameworks = [
        fw
        for fw in (cfg.get("profile") or {}).get("frameworks", [])
        if (fw, "cpu") in variants
    ]
    return [
        "%s/profile/%s-%s.%s" % (results_dir(cfg), net, fw, ext)
        for net in cfg["networks"]
        for fw in frameworks
        for ext in ("csv", "md")
    ]


def gap_args(cfg, network):
    """Harness options of the `gap` job: the run's options with the gap's rounds and steps."""
    gap = cfg.get("gap") or {}
    return bench_args(cfg, network) + " --rounds %d --steps %d" % (
        gap.get("rounds", 10),
        gap.get("steps", 100),
    )


def gap_targets(cfg, variants):
    """results/RUN/gap/NETWORK.{csv,md,json} for the configured networks that the run trains,
    when StuCrs runs on the CPU."""
    if ("stucrs", "cpu") not in variants:
        return []
    nets = [
        n for n in (cfg.get("gap") or {}).get("networks", []) if n in cfg["networks"]
    ]
    return [
        "%s/gap/%s.%s" % (results_dir(cfg), net, ext)
        for net in nets
        for ext in ("csv", "md", "json")
    ]


def requirement_files(framework):
    """envs/NAME.in and its lock, plus the GPU variant's where it exists (used by GPU builds)."""
    files = ["envs/%s.in" % framework, "envs/locks/%s.txt" % framework]
    if Path("envs", "%s-gpu.in" % framework).exists():
        files += ["envs/%s-gpu.in" % framework, "envs/locks/%s-gpu.txt" % framework]
    return files


def env_name(framework):
    """The environment (envs/NAME.in, <venv_dir>/NAME) a framework's jobs run in."""
    return ENV_OF.get(framework, framework)


def venv_python(cfg, framework):
    return str(
        Path(cfg.get("venv_dir", ".venvs"), env_name(framework), "bin", "python")
    )


def tracking_uri(cfg):
    """MLFLOW_TRACKING_URI from the environment wins over the configuration."""
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg["mlflow"]["tracking_uri"]


def tracking_key(cfg):
    """A digest of where tracking goes (URI + experiment): changing it re-runs `track`.

    Only the digest is stored in Snakemake's metadata, never the URI (it may hold a password).
    """
    text = "%s\n%s" % (tracking_uri(cfg), cfg["mlflow"]["experiment"])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
