"""Rule ``build_env``: make sure ``<venv_dir>/<framework>/`` is built from ``envs/<framework>.in``'s lock.

With the default ``venv_dir: .venvs`` this runs ``python3 envs/build.py NAME [--gpu]``, which does
nothing when the environment's stamp matches the lock (``--gpu`` when GPU variants of the
framework are planned, or when the existing environment is a GPU build). With any other ``venv_dir``
the environments are taken as built beforehand: they are checked, never built. The output is a
small JSON marker holding the environment's stamp (written atomically).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline_common import atomic_write_json, logging_to

STAMP = ".stucrs-env-stamp"


def main(smk):
    name = smk.wildcards.framework
    venv_dir = Path(smk.params.venv_dir)
    gpu = bool(smk.params.gpu)
    venv = venv_dir / name
    default = Path(".venvs")
    old = {}
    if (venv / STAMP).exists():
        with open(venv / STAMP, encoding="utf-8") as fh:
            old = json.load(fh)
    if venv_dir.resolve() == default.resolve():
        py = shutil.which("python3") or sys.executable
        cmd = [py, "envs/build.py", name]
        # GPU variants planned: the GPU build. Otherwise keep an existing GPU build (it runs on
        # the CPU too) and let build.py pick its default ($STUCRS_ENV_MODE, else the CPU build).
        if gpu or old.get("gpu"):
            cmd.append("--gpu")
        print("$ " + " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, stdout=sys.stdout, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            sys.exit("build_env: `python3 envs/build.py %s` failed with exit status %d (see %s)"
                     % (name, proc.returncode, smk.log[0]))
    else:
        print("venv_dir=%s: using the prebuilt environment %s (not built by the pipeline)"
              % (venv_dir, venv))
    python = venv / "bin" / "python"
    if not python.exists():
        sys.exit("build_env: no environment at %s (configuration key venv_dir=%s); build it with "
                 "`python3 envs/build.py %s` or point venv_dir at a folder holding it"
                 % (venv, venv_dir, name))
    stamp = {}
    if (venv / STAMP).exists():  # read again: the build may have changed it
        with open(venv / STAMP, encoding="utf-8") as fh:
            stamp = json.load(fh)
    else:
        print("warning: %s has no %s stamp" % (venv, STAMP))
    atomic_write_json(smk.output[0], {"framework": name, "venv": str(venv),
                                      "python": str(python), "gpu": gpu, "stamp": stamp})


if __name__ == "__main__" and "snakemake" in globals():
    with logging_to(snakemake.log[0]):  # noqa: F821
        main(snakemake)  # noqa: F821
