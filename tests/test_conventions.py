"""Conventions of the ecosystem: snakefmt-clean Snakemake files, the Snakemake workflow catalog's
standardized usage (config/README.md, .snakemake-workflow-catalog.yml), a LICENSE that matches
pyproject.toml, and a README whose prerequisites are exact."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def snakefmt():
    cand = Path(sys.executable).parent / "snakefmt"
    exe = str(cand) if cand.exists() else shutil.which("snakefmt")
    if not exe:
        pytest.fail("snakefmt not found: it is part of the workspace environment (envs/workspace.in)")
    return exe


def test_snakefmt_check_passes():
    res = subprocess.run([snakefmt(), "--check", "Snakefile", "workflow/"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, f"run `snakefmt Snakefile workflow/`:\n{res.stdout}{res.stderr}"


def test_snakefmt_check_would_catch_a_badly_formatted_rule(tmp_path):
    bad = tmp_path / "bad.smk"
    bad.write_text('rule x:\n    output: "a"\n    shell: "touch {output}"\n')
    res = subprocess.run([snakefmt(), "--check", str(bad)], capture_output=True, text=True)
    assert res.returncode != 0


def config_keys():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    return sorted(schema["properties"])


def test_config_readme_documents_every_key_and_preset():
    text = (ROOT / "config" / "README.md").read_text(encoding="utf-8")
    missing = [k for k in config_keys() if f"`{k}`" not in text and f"`{k}." not in text]
    assert not missing, f"config/README.md does not document {missing}"
    for preset in sorted((ROOT / "config").glob("*.yaml")):
        assert f"config/{preset.name}" in text, preset.name
    assert "MLFLOW_TRACKING_URI" in text and "mnist_dir=" in text


def test_workflow_catalog_file():
    doc = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    usage = doc["usage"]
    assert usage["report"] is True
    assert set(usage["software-stack-deployment"]) >= {"conda", "apptainer"}
    assert usage["mandatory-flags"]["flags"] and usage["mandatory-flags"]["desc"]


def test_license_matches_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'license = \{ text = "MIT" \}', pyproject)
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_readme_states_prerequisites():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python3.11" in text and "GB" in text  # the Python it needs and the disk it takes
    assert "any Python 3" not in text
