# Summary table, figures and the material of the HTML report (results/RUN/report.html, written by
# `bash scripts/run.sh`): the summary as a rendered table, each figure once (PNG; the SVG of the same
# figure lies beside it in results/RUN/figures/).

FIGURE_NAMES = [
    "training_time",
    "cpu_timeline",
    "cpu_cores",
    "test_accuracy",
    "peak_memory",
    "gpu_vs_cpu",
]
FIGURES = expand(
    results_path("figures/{name}.{ext}"), name=FIGURE_NAMES, ext=["png", "svg"]
)


rule aggregate:
    input:
        runs=expand(results_path("runs/{id}.json"), id=JOB_IDS),
        floors=(
            expand(
                results_path("floor/{network}-r{repeat}.json"),
                network=config["networks"],
                repeat=range(config["repeats"]),
            )
            if config["floor"]
            else []
        ),
    output:
        html=report(
            results_path("summary.html"),
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "summary"},
        ),
        csv=report(
            results_path("summary.csv"),
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "summary (CSV download)"},
        ),
        md=results_path("summary.md"),
    log:
        results_path("logs/aggregate.log"),
    params:
        run_name=config["run_name"],
        smoke_test=config["smoke_test"],
    script:
        "../scripts/aggregate.py"


rule figures:
    input:
        runs=expand(results_path("runs/{id}.json"), id=JOB_IDS),
        timelines=expand(results_path("runs/{id}.timeline.csv"), id=JOB_IDS),
    output:
        **{
            f"{name}_png": report(
                f"{RESULTS}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
                labels={"figure": name.replace("_", " ")},
            )
            for name in FIGURE_NAMES
        },
        **{f"{name}_svg": f"{RESULTS}/figures/{name}.svg" for name in FIGURE_NAMES},
    log:
        results_path("logs/figures.log"),
    script:
        "../scripts/figures.py"
