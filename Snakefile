# StuCrs benchmark pipeline: MNIST -> prepared data -> one timed training job per
# network x framework x device x repeat -> MLflow tracking -> summary, figures, report.
#
#   snakemake --cores all                                  # everything (config/config.yaml)
#   snakemake --cores all --configfile config/quick.yaml   # small smoke run
#   bash scripts/run.sh [ARGS]    # the same, plus the HTML report results/RUN_NAME/report.html
#
# See docs/en/pipeline.md. Contracts: docs/en/architecture.md.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


# Readable errors (key + allowed values) first, then Snakemake's own validation (fills defaults).
normalise_config(config)
try:
    check_config(
        config, Path(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
    )
except ValueError as err:
    raise WorkflowError(str(err)) from None
validate(config, "workflow/schemas/config.schema.yaml")

# Timed jobs (train, floor, profile, gap) take `bench=1` and MLflow writers `mlflow=1`. Unless given on the
# command line (`--resources bench=N`), both pools hold exactly one unit, so that a plain
# `snakemake --cores all` never overlaps two timed jobs or two MLflow writers.
for _pool in ("bench", "mlflow"):
    if _pool not in workflow.global_resources:
        workflow.global_resources[_pool] = 1

RESULTS = results_dir(config)
# only the main process: job processes (a SLURM job reads the Snakefile too) never delete anything
if workflow.is_main_process:
    drop_bad_prepared(dry_run=is_dry_run())
VARIANTS, GPU_NOTE = active_variants(config)
if GPU_NOTE:
    print(GPU_NOTE, file=sys.stderr)
JOB_IDS = all_job_ids(config, VARIANTS)
GPU_FRAMEWORKS = sorted({fw for fw, dev in VARIANTS if dev == "gpu"})
THREADS = default_threads(config)


# Only used with `--software-deployment-method apptainer`: the project image built from the
# Dockerfile (`docker build -t stucrs .`). Plain runs use the environments of envs/ (.venvs/).
container: "docker-daemon://stucrs:latest"


report: "workflow/report/workflow.rst"


wildcard_constraints:
    network="|".join(NETWORKS),
    framework="|".join(FRAMEWORKS),
    device="|".join(DEVICES),
    repeat=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/envs.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/track.smk"
include: "workflow/rules/summary.smk"


rule all:
    default_target: True
    input:
        expand(results_path("tracked/{id}.json"), id=JOB_IDS),
        results_path("summary.csv"),
        results_path("summary.md"),
        FIGURES,
        profile_targets(config, VARIANTS),
        gap_targets(config, VARIANTS),


onsuccess:
    _report = results_path("report.html")
    if os.environ.get("STUCRS_REPORT") == _report:
        print(
            "StuCrs pipeline: results in %s/; writing the HTML report %s"
            % (RESULTS, _report)
        )
    else:
        print(
            "StuCrs pipeline: results in %s/. HTML report: run `bash scripts/run.sh` (it writes "
            "%s), or `snakemake --report %s` with this run's --configfile/--config options."
            % (RESULTS, _report, _report)
        )
