# One virtual environment per framework, built by envs/build.py (skipped when up to date).


rule build_env:
    input:
        lambda wc: requirement_files(wc.framework),
    output:
        "resources/envs/{framework}.json",
    log:
        "resources/logs/build_env/{framework}.log",
    params:
        gpu=lambda wc: wc.framework in GPU_FRAMEWORKS,
        venv_dir=config["venv_dir"],
    script:
        "../scripts/build_env.py"
