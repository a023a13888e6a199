"""Pipeline configuration, lint, dry runs and MNIST errors: everything that runs no training.

Each test works in a scratch copy of the checkout (``pipeline_support.copy_repo``).
"""

import gzip
import shutil

import pytest

from pipeline_support import copy_repo, mnist_dir, quick_args, snakemake, venv_dir


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("pipeline-config"))


def _no_job_ran(repo):
    return not (repo / "resources").exists() and not (repo / "results").exists()


@pytest.mark.parametrize("args, expected", [
    (["--config", "bogus_key=1"],
     ["unknown key(s) 'bogus_key' at top level", "allowed keys:", "networks", "variants"]),
    (["--config", "repeats=three"],
     ["repeats: 'three' has the wrong type; expected integer"]),
    (["--configfile", "{bad_framework}"],
     ["variants[0].framework: 'caffe' is not allowed",
      "allowed values: 'stucrs', 'stucrs-book', 'dezero', 'tensorflow', 'torch', 'numpy'"]),
    (["--configfile", "{numpy_gpu}"],
     ["numpy (NumPy by hand) runs on the CPU only; use {framework: numpy, device: cpu}"]),
    (["--configfile", "{zero_epochs}"],
     ["network_params.cnn.epochs: 0 is less than the minimum of 1"]),
    (["--configfile", "{nested_unknown}"],
     ["unknown key(s) 'uri' at 'mlflow'", "tracking_uri"]),
    (["--config", "openblas_kernel=fast"],
     ["openblas_kernel: 'fast' is not allowed", "'auto', 'inherit', 'native'"]),
    (["--config", "paired_floor_epochs=-1"],
     ["paired_floor_epochs: -1 is less than the minimum of 0"]),
    (["--config", "networks=[mlp9]"],
     ["networks[0]: 'mlp9' is not allowed", "'mlp1', 'mlp2', 'cnn'"]),
    (["--configfile", "{gap_mlp9}"],
     ["gap.networks[0]: 'mlp9' is not allowed", "'mlp1', 'mlp2', 'cnn'"]),
])
def test_invalid_config_fails_before_any_job(repo, tmp_path, args, expected):
    files = {
        "bad_framework": "variants:\n  - {framework: caffe, device: cpu}\n",
        "numpy_gpu": "variants:\n  - {framework: numpy, device: gpu}\n",
        "zero_epochs": "network_params:\n  cnn: {epochs: 0}\n",
        "nested_unknown": "mlflow:\n  uri: sqlite:///x.db\n",
        "gap_mlp9": "gap:\n  networks: [mlp9]\n",
    }
    for name, text in files.items():
        (tmp_path / (name + ".yaml")).write_text(text)
    args = [a.format(**{n: tmp_path / (n + ".yaml") for n in files}) for a in args]
    proc = snakemake(repo, "--cores", "1", *args)  # a real run, not a dry run
    assert proc.returncode != 0
    assert "invalid configuration" in proc.output
    for text in expected:
        assert text in proc.output, proc.output[-3000:]
    assert "rule download_mnist" not in proc.output and "Building DAG" not in proc.output
    assert _no_job_ran(repo)


def test_lint_is_clean(repo):
    proc = snakemake(repo, "--lint", *quick_args())
    assert proc.returncode == 0, proc.output
    assert "Congratulations, your workflow is in a good condition!" in proc.output, proc.output
    proc = snakemake(repo, "--lint")  # default configuration too
    assert "Congratulations" in proc.output, proc.output


def test_dry_run_plans_every_cpu_job_and_notes_gpu(repo):
    proc = snakemake(repo, "-n", "--cores", "all", *quick_args())
    assert proc.returncode == 0, proc.output
    out = proc.output
    for net in ("mlp1", "cnn"):
        for fw in ("stucrs", "dezero", "tensorflow", "torch"):
            assert "results/quick/runs/%s-%s-cpu-r0.json" % (net, fw) in out
    if "-gpu-r0.json" not in out:  # no GPU here: the GPU variants are left out, with a message
        assert "GPU variants left out of the DAG" in out
    assert _no_job_ran(repo)


def test_openblas_kernel_reaches_every_timed_job(repo):
    # the configuration's openblas_kernel is the harness's --openblas-kernel of run, floor, profile, gap
    for value in ("auto", "native"):
        args = quick_args() if value == "auto" else quick_args("openblas_kernel=" + value)
        proc = snakemake(repo, "-n", "-p", "--cores", "all", *args)
        assert proc.returncode == 0, proc.output
        for command in ("workflow.bench run", "workflow.bench floor", "workflow.bench profile",
                        "workflow.bench gap"):
            lines = [line for line in proc.output.splitlines() if command in line]
            assert lines, (command, proc.output[-3000:])
            assert all("--openblas-kernel %s" % value in line for line in lines), lines
    assert _no_job_ran(repo)


def test_paired_floor_reaches_the_runs_in_the_floors_environment(repo):
    # StuCrs (and NumPy by hand, same environment) time the floor in their own process too;
    # the other frameworks and the floor jobs themselves do not; 0 turns it off
    proc = snakemake(repo, "-n", "-p", "--cores", "all", *quick_args())
    assert proc.returncode == 0, proc.output
    runs = [line for line in proc.output.splitlines() if "workflow.bench run" in line]
    assert runs, proc.output[-3000:]
    for line in runs:
        paired = "--paired-floor-epochs 5" in line
        assert paired == ("--framework stucrs" in line or "--framework numpy" in line), line
    assert not any("--paired-floor-epochs" in line for line in proc.output.splitlines()
                   if "workflow.bench floor" in line or "workflow.bench profile" in line)
    off = snakemake(repo, "-n", "-p", "--cores", "all", *quick_args("paired_floor_epochs=0"))
    assert off.returncode == 0 and "--paired-floor-epochs" not in off.output, off.output[-3000:]
    assert _no_job_ran(repo)


def _gap_commands(output):
    return [line for line in output.splitlines() if "workflow.bench gap" in line]


def test_gap_jobs_follow_the_configuration(tmp_path, repo):
    # quick preset: the networks it trains (mlp1 and the CNN, not mlp2), with its rounds and steps
    proc = snakemake(repo, "-n", "-p", "--cores", "all", *quick_args())
    assert proc.returncode == 0, proc.output
    lines = sorted(_gap_commands(proc.output), key=lambda line: "--network mlp1" not in line)
    assert len(lines) == 2 and "--network mlp1" in lines[0] and "--network cnn" in lines[1], lines
    assert all("--rounds 2 --steps 10" in line for line in lines)
    assert "--out results/quick/gap/mlp1.csv" in lines[0] and "--out results/quick/gap/cnn.csv" in lines[1]
    assert "results/quick/gap/mlp1.json" in proc.output and "results/quick/gap/mlp2" not in proc.output
    # the default configuration: all three networks, 10 rounds of 100 steps
    default = snakemake(repo, "-n", "-p", "--cores", "all", "--config", "mnist_dir=%s" % mnist_dir(),
                        "venv_dir=%s" % venv_dir())
    assert default.returncode == 0, default.output[-3000:]
    lines = _gap_commands(default.output)
    assert sorted(line.split("--network ")[1].split()[0] for line in lines) == ["cnn", "mlp1", "mlp2"]
    assert all("--rounds 10 --steps 100" in line for line in lines), lines
    # an empty list turns it off; so does a run without StuCrs on the CPU
    off = tmp_path / "off.yaml"
    off.write_text("gap:\n  networks: []\n")
    proc = snakemake(repo, "-n", "-p", "--cores", "all", "--configfile", "config/quick.yaml", off,
                     *quick_args()[2:])
    assert proc.returncode == 0 and not _gap_commands(proc.output), proc.output[-3000:]
    no_stucrs = tmp_path / "no_stucrs.yaml"
    no_stucrs.write_text("variants:\n  - {framework: dezero, device: cpu}\n")
    proc = snakemake(repo, "-n", "-p", "--cores", "all", "--configfile", "config/quick.yaml",
                     no_stucrs, *quick_args()[2:])
    assert proc.returncode == 0 and not _gap_commands(proc.output), proc.output[-3000:]
    assert _no_job_ran(repo)


def test_gpu_variants_forced_and_disabled(repo):
    forced = snakemake(repo, "-n", *quick_args("gpu=true"))
    assert forced.returncode == 0, forced.output
    assert "results/quick/runs/mlp1-torch-gpu-r0.json" in forced.output
    off = snakemake(repo, "-n", *quick_args("gpu=false"))
    assert "results/quick/runs/mlp1-torch-gpu-r0.json" not in off.output
    assert "gpu: false in the configuration" in off.output


def test_slurm_profile_dry_run(repo):
    proc = snakemake(repo, "-n", "--profile", "workflow/profiles/slurm", *quick_args())
    assert proc.returncode == 0, proc.output
    out = proc.output
    assert "rule train:" in out and "localrule" not in out.split("rule train:")[0][-200:]
    assert "slurm_extra=--exclusive" in out and "runtime=240" in out
    assert "bench=1" in out


def test_mnist_dir_missing_is_named(repo, tmp_path):
    work = copy_repo(tmp_path / "w")
    proc = snakemake(work, "--cores", "1", "resources/mnist/train-labels-idx1-ubyte.gz",
                     "--config", "mnist_dir=%s" % (tmp_path / "nowhere"))
    assert proc.returncode != 0
    assert "mnist_dir" in proc.output and "does not exist" in proc.output, proc.output[-3000:]
    assert not (work / "resources" / "mnist" / "train-labels-idx1-ubyte.gz").exists()


def test_mnist_corrupt_file_is_named(tmp_path):
    src = mnist_dir()
    bad = tmp_path / "mnist"
    shutil.copytree(src, bad)
    with gzip.open(bad / "t10k-labels-idx1-ubyte.gz", "rb") as fh:
        payload = bytearray(fh.read())
    payload[100] ^= 0xFF
    with gzip.open(bad / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(bytes(payload))
    work = copy_repo(tmp_path / "w")
    proc = snakemake(work, "--cores", "1", "resources/mnist/t10k-labels-idx1-ubyte.gz",
                     "--config", "mnist_dir=%s" % bad, "venv_dir=%s" % venv_dir())
    assert proc.returncode != 0
    out = proc.output
    assert "t10k-labels-idx1-ubyte.gz" in out and "mnist_dir" in out, out[-3000:]
    assert not (work / "resources" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


@pytest.mark.parametrize("name", ["my venvs", "it's venvs", "x;touch INJECTED"])
def test_venv_dir_with_shell_characters_is_quoted(tmp_path, repo, name):
    """venv_dir reaches the shell commands of the timed rules: a space, a quote or a `;` in it must
    stay one argument and run nothing. Dry run: each printed command parses back to the right
    python; real run: one floor job through such a folder (symlinks to the real environments)."""
    import shlex
    import subprocess

    venvs = tmp_path / name
    venvs.mkdir()
    for env in ("stucrs",):
        (venvs / env).symlink_to(venv_dir() / env)
    mnist = tmp_path / (name + " mnist")  # the other path of the configuration, just as odd
    mnist.symlink_to(mnist_dir())
    args = ["--configfile", "config/quick.yaml", "--config", "mnist_dir=%s" % mnist, "venv_dir=%s" % venvs]
    proc = snakemake(repo, "-n", "-p", "--cores", "all", *args)
    assert proc.returncode == 0, proc.output[-3000:]
    cmds = [ln.split("Shell command:", 1)[-1].strip() for ln in proc.output.splitlines() if "-m workflow.bench" in ln]
    assert cmds
    for cmd in cmds:
        argv = shlex.split(cmd)
        assert argv[0].startswith(str(venvs) + "/") and argv[0].endswith("/bin/python"), argv[:3]
    for stale in ("resources/mnist", "resources/mnist_prepared.npz", "resources/mnist_prepared.json"):
        shutil.rmtree(repo / stale, ignore_errors=True) if (repo / stale).is_dir() else (repo / stale).unlink(missing_ok=True)
    proc = snakemake(repo, "results/quick/floor/mlp1-r0.json", "--cores", "1", *args, "--forcerun", "floor",
                     "--allowed-rules", "download_mnist", "prepare", "build_env", "floor", timeout=600)
    assert proc.returncode == 0, proc.output[-3000:]
    assert (repo / "results" / "quick" / "floor" / "mlp1-r0.json").exists()
    injected = subprocess.run(["find", str(repo), str(tmp_path), "-name", "INJECTED"], capture_output=True, text=True)
    assert injected.stdout.strip() == ""


def test_truncated_prepared_data_is_named_and_prepared_again(tmp_path, repo):
    """A truncated resources/mnist_prepared.npz: the harness names it (no zip traceback) and the
    pipeline removes it and runs `prepare` again (a dry run only says so)."""
    import subprocess
    import sys

    args = ["--configfile", "config/quick.yaml", "--config", "mnist_dir=%s" % mnist_dir(), "venv_dir=%s" % venv_dir()]
    npz = repo / "resources" / "mnist_prepared.npz"
    proc = snakemake(repo, str(npz.relative_to(repo)), "--cores", "1", *args, timeout=600)
    assert proc.returncode == 0, proc.output[-3000:]
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 3])
    r = subprocess.run([str(venv_dir() / "stucrs" / "bin" / "python"), "-m", "workflow.bench", "run",
                        "--framework", "stucrs", "--network", "mlp1", "--data", str(npz), "--out",
                        str(tmp_path / "r.json"), "--epochs", "1", "--train-size", "100", "--test-size", "100"],
                       cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "is truncated or changed" in r.stderr + r.stdout, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "rm " in r.stderr + r.stdout
    dry = snakemake(repo, "-n", str(npz.relative_to(repo)), "--cores", "1", *args)
    assert "a real run removes both and prepares them again" in dry.output
    assert npz.stat().st_size == len(data) // 3  # a dry run changes nothing
    proc = snakemake(repo, str(npz.relative_to(repo)), "--cores", "1", *args, timeout=600)
    assert proc.returncode == 0, proc.output[-3000:]
    assert "removing both so that rule prepare makes them again" in proc.output
    assert npz.read_bytes() == data
