"""Rule ``track``: log one benchmark result (``results/runs/ID.json``) to MLflow as its own run.

* The run is found again by its ``job_id`` tag: tracking the same result twice updates the same
  MLflow run (metrics are logged with fixed steps and timestamps, so nothing is duplicated).
  When the result file changed (the job was trained again), the old run is deleted and a new run
  replaces it (tag ``replaces``), so that every job has exactly one active run.
* Logged the way MLflow's UI expects: the experiment is tagged ``mlflow.experimentKind =
  custom_model_development`` (the UI opens it on its runs); params (hyper-parameters + job fields);
  per-epoch metrics with ``step`` = epoch and totals (step 0); the CPU and memory timeline as
  *system metrics* (``system/cpu_utilization_percentage``, ``system/process_cpu_cores_busy``,
  ``system/process_memory_rss_megabytes``, each sample at its real time, step = sample index), shown
  in the run's System metrics tab; the prepared MNIST arrays as the run's dataset input (name,
  digest, source); source tags (``mlflow.source.git.commit``, ``mlflow.source.name``,
  ``mlflow.user``); the run's start and end time = those of the timed training; short tags (network,
  framework, device, repeat, job_id, status, a few one-word environment facts); artifacts: the
  result JSON, the timeline CSV and ``environment.json`` (versions, BLAS, CPU, ...).
* Artifact locations survive moving the checkout: in a local store, a new experiment's artifacts
  live at ``mlflow-artifacts:/EXPERIMENT`` and the files are written under the configured
  ``artifact_location`` (``results/mlflow-artifacts``), which the UI serves with
  ``--artifacts-destination`` (``scripts/mlflow_ui.sh``); an HTTP server stores them itself.
* Results are files first: if MLflow is unreachable or fails, this exits non-zero with a clear
  message and nothing under ``results/runs/`` changes; run it again later.
* Transient SQLite errors ("database is locked") are retried with back-off; Snakemake also
  serialises the writers (``resources: mlflow=1``).
* On success a marker JSON with the MLflow run id is written atomically.

Also usable without Snakemake::

    python workflow/scripts/track.py --result results/runs/ID.json --marker results/tracked/ID.json \
        --experiment NAME [--tracking-uri URI] [--artifact-location DIR]
"""

import argparse
import contextlib
import hashlib
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_common import atomic_write_json, load_result, logging_to, timeline_path  # noqa: E402

JOB_TAG = "job_id"
# the results folder (machine + absolute path of results/RUN) a run belongs to: several checkouts or
# machines can share one store, and each only ever replaces its own runs
CHECKOUT_TAG = "results_folder_id"
SHA_TAG = "result_sha256"
EPOCH_METRICS = {"train_loss": "train_loss", "train_acc": "train_acc", "test_loss": "test_loss",
                 "test_acc": "test_acc", "epoch_times_s": "epoch_time_s"}
TOTAL_METRICS = ["wall_time_s", "time_to_first_batch_s", "cpu_user_s", "cpu_sys_s",
                 "cpu_time_s", "peak_rss_mb", "over_paired_floor"]
TIMELINE_POINTS = 600  # timeline samples logged as system metrics (the full CSV is an artifact)
# timeline column -> (MLflow system metric, factor)
SYSTEM_METRICS = {"cpu_percent_machine": ("system/cpu_utilization_percentage", 1.0),
                  "cpu_percent_core": ("system/process_cpu_cores_busy", 0.01),
                  "rss_mb": ("system/process_memory_rss_megabytes", 1.0)}
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
PROXIED = "mlflow-artifacts:"
BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch call
ATTEMPTS = 6


class TrackingError(Exception):
    """MLflow could not be used; the message says what to do."""


def redact(uri):
    """The URI without a password (for messages and markers)."""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return "<unparsable URI>"
    if parts.password:
        netloc = "%s:***@%s" % (parts.username or "", parts.hostname or "")
        if parts.port:
            netloc += ":%d" % parts.port
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return uri


def resolve_uri(explicit, config_uri):
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or config_uri


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_http(uri):
    return uri.split(":", 1)[0].lower() in ("http", "https")


DB_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mssql": 1433}


def _without_credentials(uri):
    """(URI without user:password, (user, password) or None)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.username is None:
        return uri, None
    netloc = parts.hostname or ""
    if parts.port:
        netloc += ":%d" % parts.port
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), (
        urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))


def preflight(uri, timeout=5):
    """Fail fast (seconds, not minutes), with one clear message, when the store cannot work."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    base = scheme.split("+", 1)[0]
    if is_http(uri):
        clean, cred = _without_credentials(uri)
        req = urllib.request.Request(clean.rstrip("/") + "/health")
        if cred:
            import base64
            req.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % cred).encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in (401, 403):
                raise TrackingError("the MLflow server at %s answers %s on /health%s"
                                    % (redact(uri), exc.code, " (check the user and password)"
                                       if exc.code in (401, 403) else "")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError("the MLflow store at %s is not reachable (%s)"
                                % (redact(uri), getattr(exc, "reason", exc))) from None
    elif base in DB_PORTS:
        import socket
        parts = urllib.parse.urlsplit(uri)
        host, port = parts.hostname or "localhost", parts.port or DB_PORTS[base]
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise TrackingError("the MLflow store at %s is not reachable (%s:%d: %s)"
                                % (redact(uri), host, port, exc.strerror or exc)) from None
    elif sqlite_path(uri) is not None:
        path = sqlite_path(uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError("cannot create the folder of the SQLite store %s (%s)"
                                % (path, exc)) from None


def sqlite_path(uri):
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):].split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)
    return None


@contextlib.contextmanager
def store_lock(uri):
    """An exclusive lock beside a SQLite store for the whole tracking of one result.

    SQLite serialises single writes but MLflow's first-time schema creation (alembic migrations)
    is not safe against a second process doing the same; and several writers only wait on each
    other here instead of failing with "database is locked". Other stores need no lock."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    import fcntl
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+") as fh:
        t0 = time.monotonic()
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        waited = time.monotonic() - t0
        if waited > 1:
            print("waited %.1f s for the SQLite store lock %s" % (waited, lock_path), flush=True)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def check_sqlite_integrity(uri):
    """A damaged SQLite store is refused before anything is written into it."""
    import sqlite3
    path = sqlite_path(uri)
    if path is None or not path.exists() or path.stat().st_size == 0:
        return
    try:
        with contextlib.closing(sqlite3.connect(str(path), timeout=30)) as con:
            rows = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        rows = [str(exc)]
    if rows != ["ok"]:
        raise TrackingError(
            "the SQLite store %s is damaged (PRAGMA quick_check: %s). Restore it from a backup, or "
            "move it away (mv %s %s.broken) and run the pipeline again: every result is tracked anew "
            "from results/RUN/runs/" % (path, " ".join(" / ".join(rows).split())[:120], path, path))


def transient(exc):
    text = ("%s %s" % (type(exc).__name__, exc)).lower()
    return any(s in text for s in ("database is locked", "database table is locked",
                                   "already exists", "unique constraint", "deadlock",
                                   "could not serialize", "disk i/o error", "busy"))


def with_retries(fn, what):
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return fn()
        except TrackingError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow raises many types
            if attempt < ATTEMPTS and transient(exc):
                delay = min(10.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random())
                print("%s: transient MLflow error (%s); retry %d/%d in %.1f s"
                      % (what, str(exc).splitlines()[0][:200], attempt, ATTEMPTS - 1, delay),
                      flush=True)
                time.sleep(delay)
                continue
            raise


def source_tags(env):
    """The code a run ran, as tags: MLflow's ``mlflow.source.git.commit`` (the UI links it) and
    ``git_dirty`` (``true``: tracked files differed from that commit; no tag where unknown)."""
    tags = {}
    if env.get("git_commit"):
        tags["mlflow.source.git.commit"] = str(env["git_commit"])
    if env.get("git_dirty") is not None:
        tags["git_dirty"] = "true" if env["git_dirty"] else "false"
    return tags


def _short_env_tags(env):
    """One-word environment facts as tags (``env.threads``, ``env.cpu_model``, ...); everything
    else (BLAS, paths, nested records) is in the ``environment.json`` artifact, not in tags."""
    tags = {}
    for key, value in sorted((env or {}).items()):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if text and len(text) <= 80 and "/" not in text and "\\" not in text:
                tags["env." + key] = text
    return tags


def dataset_input(env, source):
    """The prepared MNIST arrays as an MLflow dataset input (name, digest, source)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    hashes = (env or {}).get("data_sha256") or {}
    if not hashes:
        return None
    digest = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:32]
    source = source or {}
    kind = "local" if source.get("local_dir") else "http"
    ds = Dataset(name="mnist (prepared arrays)", digest=digest, source_type=kind,
                 source=json.dumps(source, sort_keys=True),
                 profile=json.dumps({"arrays_sha256": hashes}, sort_keys=True))
    return DatasetInput(dataset=ds, tags=[InputTag("mlflow.data.context", "training")])


def write_proxied_artifact(artifact_root, experiment_location, run_id, rel_path, data):
    """Write ``data`` (bytes) as the artifact ``rel_path`` of a run whose experiment lives at
    ``mlflow-artifacts:/...``, straight into the folder the UI serves (``--artifacts-destination
    artifact_root``); atomic (temporary file, then rename)."""
    rel = experiment_location[len(PROXIED):].lstrip("/")
    # the server maps mlflow-artifacts:/REL/... to DESTINATION/REL/... without decoding REL
    dest = Path(artifact_root) / rel / run_id / "artifacts" / rel_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name("." + dest.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def _num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def build_metrics(res, tl_path, base_ms):
    """[(key, value, timestamp_ms, step)] for the result, with fixed timestamps."""
    from mlflow.entities import Metric

    m = res.get("metrics") or {}
    out = []
    epoch_times = [t for t in (m.get("epoch_times_s") or []) if _num(t) is not None]
    elapsed = 0.0
    ts_of_epoch = []
    for t in epoch_times:
        elapsed += float(t)
        ts_of_epoch.append(base_ms + int(elapsed * 1000))
    for src, key in EPOCH_METRICS.items():
        for i, value in enumerate(m.get(src) or []):
            v = _num(value)
            if v is None:
                continue
            ts = ts_of_epoch[i] if i < len(ts_of_epoch) else base_ms + i + 1
            out.append(Metric(key, v, ts, i + 1))
    wall = _num(m.get("wall_time_s")) or 0.0
    end_ms = base_ms + int(wall * 1000)
    for key in TOTAL_METRICS:
        v = _num(m.get(key))
        if v is not None:
            out.append(Metric(key, v, end_ms, 0))
    acc = [a for a in (m.get("test_acc") or []) if _num(a) is not None]
    if acc:
        out.append(Metric("final_test_acc", float(acc[-1]), end_ms, 0))
    if tl_path is not None and tl_path.exists():
        import csv
        with open(tl_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if rows:
            stride = max(1, -(-len(rows) // TIMELINE_POINTS))
            picked = rows[::stride]
            if picked[-1] is not rows[-1]:
                picked.append(rows[-1])
            for step, row in enumerate(picked):
                t = _num(row.get("t_s"))
                if t is None:
                    continue
                for col, (key, factor) in SYSTEM_METRICS.items():
                    v = _num(row.get(col))
                    if v is not None:
                        out.append(Metric(key, v * factor, base_ms + int(round(t * 1000)), step))
    return out


def results_folder_id(result_path):
    """The id of the results folder (results/RUN) that holds this result: a random id kept in
    results/RUN/.folder_id, made once; stable when the host or the checkout's path changes."""
    import uuid
    path = Path(result_path).resolve().parent.parent / ".folder_id"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    value = uuid.uuid4().hex[:16]
    tmp = path.with_name(".folder_id.%d.tmp" % os.getpid())
    tmp.write_text(value + "\n", encoding="utf-8")
    try:
        os.link(tmp, path)  # the first writer wins; a second one reads the winner's id
    except FileExistsError:
        value = path.read_text(encoding="utf-8").strip()
    finally:
        tmp.unlink()
    return value


def _user():
    import getpass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def track(result_path, marker_path, experiment, uri, artifact_location=None, mnist_source=None):
    result_path = Path(result_path)
    res = load_result(result_path)
    sha = sha256_file(result_path)
    tl = timeline_path(result_path, res)
    tl = tl if tl.exists() else None
    env = res.get("environment") or {}
    preflight(uri)

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    from mlflow.tracking import MlflowClient

    if is_http(uri):
        # credentials in the URI: MLflow's client takes them from these variables (never printed)
        uri, cred = _without_credentials(uri)
        if cred:
            os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = cred
    with store_lock(uri):
        check_sqlite_integrity(uri)
        # creating the client opens (and may migrate) the store: a busy store is retried too
        client = with_retries(lambda: MlflowClient(tracking_uri=uri), res["job"]["id"])
        return _track_locked(client, res, result_path, marker_path,
                             experiment, uri, artifact_location, sha, tl, env, mnist_source)


def _track_locked(client, res, result_path, marker_path, experiment, uri, artifact_location,
                  sha, tl, env, mnist_source=None):
    from mlflow.entities import Param, RunTag, ViewType

    job = res["job"]
    jid = job["id"]

    def get_experiment():
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            loc = None
            if artifact_location and sqlite_path(uri) is not None:
                # relative to the folder the UI serves: survives moving the checkout
                loc = PROXIED + "/" + urllib.parse.quote(experiment, safe="")
            exp_id = client.create_experiment(experiment, artifact_location=loc, tags=EXPERIMENT_KIND)
            print("created MLflow experiment %r (%s)" % (experiment, exp_id))
            return client.get_experiment(exp_id)
        if exp.lifecycle_stage != "active":
            raise TrackingError("the MLflow experiment %r is deleted; restore it (mlflow "
                                "experiments restore --experiment-id %s) or choose another "
                                "name (mlflow.experiment)" % (experiment, exp.experiment_id))
        for key, value in EXPERIMENT_KIND.items():
            if exp.tags.get(key) != value:
                client.set_experiment_tag(exp.experiment_id, key, value)
        return exp

    exp = with_retries(get_experiment, jid)
    exp_id = exp.experiment_id
    proxied = (exp.artifact_location or "").startswith(PROXIED) and sqlite_path(uri) is not None

    folder_id = results_folder_id(result_path)

    def find_runs():
        # this folder's runs of the job, and runs of the job tracked before folders had ids
        return client.search_runs([exp_id], filter_string="tags.%s = '%s'" % (JOB_TAG, jid),
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  order_by=["attributes.start_time ASC"])

    runs = [r for r in with_retries(find_runs, jid)
            if r.data.tags.get(CHECKOUT_TAG, folder_id) == folder_id]
    same = [r for r in runs if r.data.tags.get(SHA_TAG) == sha]
    keep = same[0] if same else None
    stale = [r for r in runs if keep is None or r.info.run_id != keep.info.run_id]

    m = res.get("metrics") or {}
    wall = _num(m.get("wall_time_s")) or 0.0
    tags = {JOB_TAG: jid, SHA_TAG: sha, CHECKOUT_TAG: folder_id, "network": job["network"],
            "framework": job["framework"], "device": job["device"],
            "repeat": str(job.get("repeat", 0)), "status": res.get("status", "ok"),
            "git_commit": str(env.get("git_commit") or ""), "mlflow.runName": jid,
            "result_file": result_path.name,
            "mlflow.source.name": "workflow/bench (python -m workflow.bench %s)" % (
                "floor" if job["framework"] == "floor" else "run"),
            "mlflow.source.type": "LOCAL", "mlflow.user": _user()}
    if res.get("message"):
        tags["message"] = str(res["message"])[:5000]
    tags.update(source_tags(env))
    tags.update(_short_env_tags(env))
    if stale:
        tags["replaces"] = ",".join(r.info.run_id for r in stale)

    # the run's times are the training's own (older results without them: the file's time)
    start_s, end_s = _num(m.get("start_unix_s")), _num(m.get("end_unix_s"))
    if keep is None:
        base_ms = (int(start_s * 1000) if start_s is not None
                   else int(os.stat(result_path).st_mtime * 1000) - int(wall * 1000))

        def create():
            run = client.create_run(exp_id, start_time=base_ms, tags=tags, run_name=jid)
            return run.info.run_id

        run_id = with_retries(create, jid)
        print("%s: created MLflow run %s" % (jid, run_id))
    else:
        run_id = keep.info.run_id
        base_ms = keep.info.start_time
        print("%s: updating MLflow run %s (same result file)" % (jid, run_id))

    params = dict(res.get("params") or {})
    params.update(network=job["network"], framework=job["framework"], device=job["device"],
                  repeat=job.get("repeat", 0))
    param_list = [Param(str(k), str(v)[:6000]) for k, v in sorted(params.items())]
    tag_list = [RunTag(k, v) for k, v in sorted(tags.items())]
    metrics = build_metrics(res, tl, base_ms)
    with_retries(lambda: client.log_batch(run_id, params=param_list, tags=tag_list), jid)
    for i in range(0, len(metrics), BATCH):
        chunk = metrics[i:i + BATCH]
        with_retries(lambda: client.log_batch(run_id, metrics=chunk), jid)

    ds = dataset_input(env, mnist_source)
    if ds is not None:
        with_retries(lambda: client.log_inputs(run_id, datasets=[ds]), jid)

    if proxied:
        for f in [result_path] + ([tl] if tl is not None else []):
            write_proxied_artifact(artifact_location, exp.artifact_location, run_id,
                                   "result/" + Path(f).name, Path(f).read_bytes())
        write_proxied_artifact(artifact_location, exp.artifact_location, run_id, "environment.json",
                               (json.dumps(env, indent=2, sort_keys=True) + "\n").encode())
    else:
        with_retries(lambda: client.log_artifact(run_id, str(result_path), "result"), jid)
        if tl is not None:
            with_retries(lambda: client.log_artifact(run_id, str(tl), "result"), jid)
        with_retries(lambda: client.log_dict(run_id, env, "environment.json"), jid)

    status = "FINISHED"  # a `no_gpu` result is a clean result too (see the `status` tag)
    same_start = start_s is not None and end_s is not None and base_ms == int(start_s * 1000)
    end_ms = int(end_s * 1000) if same_start else base_ms + int(wall * 1000)
    with_retries(lambda: client.set_terminated(run_id, status=status, end_time=end_ms), jid)
    for r in stale:
        with_retries(lambda: client.delete_run(r.info.run_id), jid)
        print("%s: deleted the superseded MLflow run %s" % (jid, r.info.run_id))

    marker = {"job_id": jid, "run_id": run_id, "experiment": experiment,
              "experiment_id": exp_id, "tracking_uri": redact(uri), "result_sha256": sha,
              "metrics_logged": len(metrics), "replaced": [r.info.run_id for r in stale]}
    try:
        atomic_write_json(marker_path, marker)
    except OSError as exc:
        raise TrackingError("the run is tracked (MLflow run %s), but its marker %s cannot be written "
                            "(%s): make %s writable and run the pipeline again"
                            % (run_id, marker_path, exc.strerror or exc, Path(marker_path).parent)) from None
    print("%s: tracked as MLflow run %s in experiment %r at %s"
          % (jid, run_id, experiment, redact(uri)))
    return marker


def run_safely(result_path, marker_path, experiment, uri, artifact_location, mnist_source=None):
    try:
        return track(result_path, marker_path, experiment, uri, artifact_location, mnist_source)
    except Exception as exc:  # noqa: BLE001
        if not isinstance(exc, TrackingError):
            import traceback
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.exit(
            "track: MLflow tracking of %s failed at %s: %s\n"
            "  The training result is kept (%s); only tracking is missing.\n"
            "  Fix the store (configuration key mlflow.tracking_uri, or the environment variable "
            "MLFLOW_TRACKING_URI; is the server up? is the database locked?) and run the pipeline "
            "again: only the tracking jobs re-run."
            % (Path(result_path).name, redact(uri), first[:1200], result_path))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--result", required=True, help="results/runs/ID.json")
    p.add_argument("--marker", required=True, help="results/tracked/ID.json (written on success)")
    p.add_argument("--experiment", required=True)
    p.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else "
                   "sqlite:///results/mlflow.db")
    p.add_argument("--artifact-location", default="results/mlflow-artifacts",
                   help="artifact folder of a new experiment in a local (non-HTTP) store")
    a = p.parse_args(argv)
    uri = resolve_uri(a.tracking_uri, "sqlite:///results/mlflow.db")
    run_safely(a.result, a.marker, a.experiment, uri, a.artifact_location)
    return 0


if __name__ == "__main__":
    if "snakemake" in globals():
        smk = snakemake  # noqa: F821
        with logging_to(smk.log[0]):
            cfg = smk.config["mlflow"]
            run_safely(smk.input.json, smk.output[0], smk.params.experiment,
                       resolve_uri(None, cfg["tracking_uri"]),
                       cfg.get("artifact_location", "results/mlflow-artifacts"),
                       dict(smk.params.mnist_source))
    else:
        sys.exit(main())
