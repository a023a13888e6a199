# Summary table, figures and the material of `snakemake --report results/report.html`.

FIGURE_NAMES = [
    "training_time",
    "cpu_timeline",
    "test_accuracy",
    "peak_memory",
    "gpu_vs_cpu",
]
FIGURES = expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=["png", "svg"])


rule aggregate:
    input:
        runs=expand("results/runs/{id}.json", id=JOB_IDS),
        floors=(
            expand(
                "results/floor/{network}-r{repeat}.json",
                network=config["networks"],
                repeat=range(config["repeats"]),
            )
            if config["floor"]
            else []
        ),
    output:
        csv=report(
            "results/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "summary (CSV)"},
        ),
        md="results/summary.md",
    log:
        "results/logs/aggregate.log",
    script:
        "../scripts/aggregate.py"


rule figures:
    input:
        runs=expand("results/runs/{id}.json", id=JOB_IDS),
        timelines=expand("results/runs/{id}.timeline.csv", id=JOB_IDS),
    output:
        **{
            f"{name}_{ext}": report(
                f"results/figures/{name}.{ext}",
                caption=f"../report/{name}.rst",
                category="Figures",
                subcategory=ext.upper(),
                labels={"figure": name.replace("_", " "), "format": ext.upper()},
            )
            for name in FIGURE_NAMES
            for ext in ("png", "svg")
        },
    log:
        "results/logs/figures.log",
    script:
        "../scripts/figures.py"
