"""Print the ``run_name`` that Snakemake will see for these command-line arguments.

``bash scripts/run.sh ARGS`` uses it to name the report, ``results/RUN_NAME/report.html``: the
defaults of ``config/config.yaml``, overlaid by each ``--configfile`` in order, then ``--config
run_name=...``. Standard library and PyYAML only (the workspace environment).
"""
import sys
from pathlib import Path

import yaml


def run_name(argv, root=Path(".")):
    """Config files in order, then ``--config`` on top, whatever the order on the command line
    (as Snakemake applies them)."""
    name = (yaml.safe_load((root / "config" / "config.yaml").read_text(encoding="utf-8")) or {}).get(
        "run_name", "default")
    files, overrides = [], []
    i = 0
    while i < len(argv):
        flag, values = argv[i], []
        if flag.startswith("--config") and "=" in flag:
            flag, first = flag.split("=", 1)
            values.append(first)
        if flag in ("--configfile", "--configfiles", "--config", "-C"):
            i += 1
            while i < len(argv) and not argv[i].startswith("-"):
                values.append(argv[i])
                i += 1
            (overrides if flag in ("--config", "-C") else files).extend(values)
            continue
        i += 1
    for f in files:
        name = (yaml.safe_load((root / f).read_text(encoding="utf-8")) or {}).get("run_name", name)
    for v in overrides:
        key, _, value = v.partition("=")
        if key == "run_name":
            name = value
    return str(name)


if __name__ == "__main__":
    print(run_name(sys.argv[1:]))
