"""Rule ``track``: log one benchmark result (``results/runs/ID.json``) to MLflow as its own run.

* The run is found again by its ``job_id`` tag: tracking the same result twice updates the same
  MLflow run (metrics are logged with fixed steps and timestamps, so nothing is duplicated).
  When the result file changed (the job was trained again), the old run is deleted and a new run
  replaces it (tag ``replaces``), so that every job has exactly one active run.
* Logged: params (hyper-parameters + job fields), per-epoch metrics with ``step`` = epoch,
  totals (step 0), the CPU/memory timeline as metrics ``timeline_*`` with ``step`` = milliseconds
  since the start of the timed region, tags (network, framework, device, repeat, job_id, git
  commit, status, environment ``env.*``), and artifacts: the result JSON, the timeline CSV and
  ``environment.json``.
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
SHA_TAG = "result_sha256"
EPOCH_METRICS = {"train_loss": "train_loss", "train_acc": "train_acc", "test_loss": "test_loss",
                 "test_acc": "test_acc", "epoch_times_s": "epoch_time_s"}
TOTAL_METRICS = ["wall_time_s", "time_to_first_batch_s", "cpu_user_s", "cpu_sys_s",
                 "cpu_time_s", "peak_rss_mb", "over_paired_floor"]
TIMELINE_POINTS = 600  # timeline samples logged as metrics (the full CSV is an artifact)
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


def preflight(uri):
    """Fail fast, with a clear message, when the store obviously cannot work."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if is_http(uri):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise TrackingError("the MLflow server at %s answers %s on /health"
                                    % (redact(uri), exc.code)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError("the MLflow server at %s is not reachable (%s)"
                                % (redact(uri), getattr(exc, "reason", exc))) from None
    elif sqlite_path(uri) is not None:
        path = sqlite_path(uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError("cannot create the folder of the SQLite store %s (%s)"
                                % (path, exc)) from None
    elif scheme in ("", "file") or len(scheme) == 1:  # plain path / drive letter
        pass


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


def _flat_env(env):
    tags = {}
    for key, value in sorted((env or {}).items()):
        if key == "data_sha256":
            continue
        if isinstance(value, (list, dict)):
            value = json.dumps(value, sort_keys=True)
        tags["env." + key] = str(value)[:5000]
    return tags


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
            seen_steps = set()
            for row in picked:
                t = _num(row.get("t_s"))
                if t is None:
                    continue
                step = int(round(t * 1000))
                if step in seen_steps:
                    continue
                seen_steps.add(step)
                for col in ("cpu_percent_core", "cpu_percent_machine", "rss_mb"):
                    v = _num(row.get(col))
                    if v is not None:
                        out.append(Metric("timeline_" + col, v, base_ms + step, step))
    return out


def track(result_path, marker_path, experiment, uri, artifact_location=None):
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

    with store_lock(uri):
        return _track_locked(MlflowClient(tracking_uri=uri), res, result_path, marker_path,
                             experiment, uri, artifact_location, sha, tl, env)


def _track_locked(client, res, result_path, marker_path, experiment, uri, artifact_location,
                  sha, tl, env):
    from mlflow.entities import Param, RunTag, ViewType

    job = res["job"]
    jid = job["id"]

    def get_experiment():
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            loc = None
            if artifact_location and not is_http(uri):
                loc = Path(artifact_location).resolve().as_uri()
            exp_id = client.create_experiment(experiment, artifact_location=loc)
            print("created MLflow experiment %r (%s)" % (experiment, exp_id))
            return exp_id
        if exp.lifecycle_stage != "active":
            raise TrackingError("the MLflow experiment %r is deleted; restore it (mlflow "
                                "experiments restore --experiment-id %s) or choose another "
                                "name (mlflow.experiment)" % (experiment, exp.experiment_id))
        return exp.experiment_id

    exp_id = with_retries(get_experiment, jid)

    def find_runs():
        return client.search_runs([exp_id], filter_string="tags.%s = '%s'" % (JOB_TAG, jid),
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  order_by=["attributes.start_time ASC"])

    runs = with_retries(find_runs, jid)
    same = [r for r in runs if r.data.tags.get(SHA_TAG) == sha]
    keep = same[0] if same else None
    stale = [r for r in runs if keep is None or r.info.run_id != keep.info.run_id]

    wall = _num((res.get("metrics") or {}).get("wall_time_s")) or 0.0
    tags = {JOB_TAG: jid, SHA_TAG: sha, "network": job["network"],
            "framework": job["framework"], "device": job["device"],
            "repeat": str(job.get("repeat", 0)), "status": res.get("status", "ok"),
            "git_commit": str(env.get("git_commit") or ""), "mlflow.runName": jid,
            "result_file": str(result_path)}
    if res.get("message"):
        tags["message"] = str(res["message"])[:5000]
    if env.get("git_commit"):
        tags["mlflow.source.git.commit"] = str(env["git_commit"])
    tags.update(_flat_env(env))
    if stale:
        tags["replaces"] = ",".join(r.info.run_id for r in stale)

    if keep is None:
        base_ms = int(os.stat(result_path).st_mtime * 1000) - int(wall * 1000)

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

    with_retries(lambda: client.log_artifact(run_id, str(result_path), "result"), jid)
    if tl is not None:
        with_retries(lambda: client.log_artifact(run_id, str(tl), "result"), jid)
    with_retries(lambda: client.log_dict(run_id, env, "environment.json"), jid)

    status = "FINISHED"  # a `no_gpu` result is a clean result too (see the `status` tag)
    with_retries(lambda: client.set_terminated(run_id, status=status,
                                               end_time=base_ms + int(wall * 1000)), jid)
    for r in stale:
        with_retries(lambda: client.delete_run(r.info.run_id), jid)
        print("%s: deleted the superseded MLflow run %s" % (jid, r.info.run_id))

    marker = {"job_id": jid, "run_id": run_id, "experiment": experiment,
              "experiment_id": exp_id, "tracking_uri": redact(uri), "result_sha256": sha,
              "metrics_logged": len(metrics), "replaced": [r.info.run_id for r in stale]}
    atomic_write_json(marker_path, marker)
    print("%s: tracked as MLflow run %s in experiment %r at %s"
          % (jid, run_id, experiment, redact(uri)))
    return marker


def run_safely(result_path, marker_path, experiment, uri, artifact_location):
    try:
        return track(result_path, marker_path, experiment, uri, artifact_location)
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
            % (Path(result_path).name, redact(uri), first[:500], result_path))


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
                       cfg.get("artifact_location", "results/mlflow-artifacts"))
    else:
        sys.exit(main())
