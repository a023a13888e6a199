# Timed jobs. `bench=1` (a pool of one unit, see the Snakefile) keeps them from overlapping, and
# they take every core by default, so nothing else runs beside them on this machine.


rule train:
    input:
        data="resources/mnist_prepared.npz",
        env=lambda wc: "resources/envs/%s.json" % env_name(wc.framework),
    output:
        json=results_path("runs/{network}-{framework}-{device}-r{repeat}.json"),
        timeline=results_path(
            "runs/{network}-{framework}-{device}-r{repeat}.timeline.csv"
        ),
    log:
        results_path("logs/train/{network}-{framework}-{device}-r{repeat}.log"),
    priority: repeat_round
    threads: THREADS
    resources:
        bench=1,
        gpu=lambda wc: int(wc.device == "gpu"),
    params:
        python=lambda wc: venv_python(config, wc.framework),
        args=lambda wc: bench_args(config, wc.network),
        paired=lambda wc: paired_floor_args(config, wc.framework, wc.device),
        header=TIMELINE_HEADER,
    # A GPU variant without a GPU writes a clean `no_gpu` result and no timeline: an empty
    # (header only) timeline keeps the outputs complete.
    shell:
        "{params.python:q} -m workflow.bench run --no-progress"
        " --framework {wildcards.framework} --device {wildcards.device}"
        " --network {wildcards.network} --repeat {wildcards.repeat}"
        " --data {input.data:q} --out {output.json:q} --threads {threads} {params.args} {params.paired}"
        " > {log:q} 2>&1"
        " && if [ ! -e {output.timeline:q} ]; then echo {params.header} > {output.timeline:q}; fi"


rule floor:
    input:
        data="resources/mnist_prepared.npz",
        env=f"resources/envs/{FLOOR_ENV}.json",
    # Repeated like the training jobs (`repeats`): the summary's floor is the median of its repeats.
    output:
        json=results_path("floor/{network}-r{repeat}.json"),
        timeline=results_path("floor/{network}-r{repeat}.timeline.csv"),
    log:
        results_path("logs/floor/{network}-r{repeat}.log"),
    priority: repeat_round
    threads: THREADS
    resources:
        bench=1,
    params:
        python=venv_python(config, FLOOR_ENV),
        args=lambda wc: bench_args(config, wc.network),
    shell:
        "{params.python:q} -m workflow.bench floor --no-progress"
        " --network {wildcards.network} --device cpu --repeat {wildcards.repeat}"
        " --data {input.data:q} --out {output.json:q} --threads {threads} {params.args}"
        " > {log:q} 2>&1"


# Where the time goes, function by function: a short untimed-by-the-summary run of each network
# with each DeZero-API framework (`python -m workflow.bench profile`). Timed like the benchmark
# jobs (`bench=1`, every core) so that the shares are those of a quiet machine.
rule profile:
    input:
        data="resources/mnist_prepared.npz",
        env="resources/envs/{framework}.json",
    output:
        csv=report(
            results_path("profile/{network}-{framework}.csv"),
            caption="../report/profile.rst",
            category="Profile",
            labels={"network": "{network}", "framework": "{framework}"},
        ),
        md=results_path("profile/{network}-{framework}.md"),
    log:
        results_path("logs/profile/{network}-{framework}.log"),
    threads: THREADS
    resources:
        bench=1,
    params:
        python=lambda wc: venv_python(config, wc.framework),
        args=lambda wc: profile_args(config, wc.network),
    shell:
        "{params.python:q} -m workflow.bench profile --no-progress"
        " --framework {wildcards.framework} --network {wildcards.network} --device cpu"
        " --data {input.data:q} --out {output.csv:q} --threads {threads} {params.args}"
        " > {log:q} 2>&1"


# What StuCrs's gap to the floor is made of (`python -m workflow.bench gap`): its training step with
# the bias, the ReLU and the batch gathering made free one at a time, against the floor's step in
# the same process. Timed like the benchmark jobs (`bench=1`, every core).
rule gap:
    input:
        data="resources/mnist_prepared.npz",
        env="resources/envs/stucrs.json",
    output:
        csv=report(
            results_path("gap/{network}.csv"),
            caption="../report/gap.rst",
            category="Profile",
            labels={"network": "{network}", "framework": "stucrs (gap to the floor)"},
        ),
        md=results_path("gap/{network}.md"),
        json=results_path("gap/{network}.json"),
    log:
        results_path("logs/gap/{network}.log"),
    threads: THREADS
    resources:
        bench=1,
    params:
        python=venv_python(config, "stucrs"),
        args=lambda wc: gap_args(config, wc.network),
    shell:
        "{params.python:q} -m workflow.bench gap --no-progress"
        " --network {wildcards.network} --device cpu"
        " --data {input.data:q} --out {output.csv:q} --threads {threads} {params.args}"
        " > {log:q} 2>&1"
