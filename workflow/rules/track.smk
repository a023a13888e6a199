# MLflow: one MLflow run per training job, found again by its `job_id` tag (never duplicated).
# Results are files first: a failing tracking job leaves results/runs/ untouched.


rule track:
    input:
        json=results_path("runs/{id}.json"),
        timeline=results_path("runs/{id}.timeline.csv"),
    output:
        results_path("tracked/{id}.json"),
    log:
        results_path("logs/track/{id}.log"),
    resources:
        mlflow=1,
    params:
        experiment=config["mlflow"]["experiment"],
        # where MNIST came from: the dataset input's source
        mnist_source=mnist_source(config),
        # A digest of the tracking URI: pointing at another store re-runs tracking.
        store=tracking_key(config),
    script:
        "../scripts/track.py"
