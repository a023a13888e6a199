# MLflow: one MLflow run per training job, found again by its `job_id` tag (never duplicated).
# Results are files first: a failing tracking job leaves results/runs/ untouched.


rule track:
    input:
        json="results/runs/{id}.json",
        timeline="results/runs/{id}.timeline.csv",
    output:
        "results/tracked/{id}.json",
    log:
        "results/logs/track/{id}.log",
    resources:
        mlflow=1,
    params:
        experiment=config["mlflow"]["experiment"],
        # A digest of the tracking URI: pointing at another store re-runs tracking.
        store=tracking_key(config),
    script:
        "../scripts/track.py"
