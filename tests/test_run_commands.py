"""The README's main command: scripts/run.sh names the report after the preset's run_name."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
from run_name import run_name  # noqa: E402


@pytest.mark.parametrize("argv, expected", [
    ([], "default"),
    (["--configfile", "config/quick.yaml"], "quick"),
    (["--configfile=config/quick.yaml", "--config", "mnist_dir=/x"], "quick"),
    (["--configfile", "config/quick.yaml", "--config", "mnist_dir=/x", "run_name=mine"], "mine"),
    (["--config", "run_name=solo", "--configfile", "config/quick.yaml"], "solo"),  # --config wins
    (["-C", "run_name=c"], "c"),
    (["--cores", "2", "-n"], "default"),
])
def test_run_name_follows_snakemakes_config_order(argv, expected):
    assert run_name(argv, ROOT) == expected


def test_run_name_cli():
    out = subprocess.run([sys.executable, str(ROOT / "workflow" / "scripts" / "run_name.py"), "--configfile",
                          "config/quick.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "quick"


def test_run_sh_writes_the_report_of_the_run():
    text = (ROOT / "scripts" / "run.sh").read_text()
    assert 'run_name=$(.venvs/workspace/bin/python workflow/scripts/run_name.py "$@")' in text
    assert '--report "$STUCRS_REPORT" --report-after-run "$@"' in text
    assert 'STUCRS_REPORT="results/$run_name/report.html"' in text


def _common():
    import ast
    src = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    tree = ast.parse(src)
    ns = {"sys": sys}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "is_dry_run":
            exec(compile(ast.Module([node], []), "common.smk", "exec"), ns)
    return ns["is_dry_run"]


@pytest.mark.parametrize("argv, dry", [
    (["--cores", "all"], False),
    (["--cores", "all", "--report", "results/quick/report.html", "--report-after-run"], False),
    (["-n"], True), (["-np", "--cores", "2"], True), (["--dry-run"], True), (["--lint"], True),
    (["--report", "r.html"], True), (["--nolock", "--notemp", "-j", "2", "--rerun-incomplete"], False),
    (["--profile", "workflow/profiles/slurm", "--cores", "1"], False),
])
def test_is_dry_run(argv, dry):
    assert _common()(argv) is dry
