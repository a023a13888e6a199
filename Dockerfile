# syntax=docker/dockerfile:1
#
# StuCrs research container: CUDA 12 runtime + cuDNN, Python 3.11, and the pinned environments of
# envs/ (GPU variants, hash-locked) built by the same envs/build.py that builds them on a
# workstation or in CI.
#
#   docker build -t stucrs .
#   docker run --rm -it --gpus all stucrs      # --gpus is optional: without it, GPU runs say no_gpu
#   docker run --rm --gpus all stucrs python3 scripts/gpu_check.py
#
# The repository lives at /workspaces/stucrs and its environments at /workspaces/stucrs/.venvs/NAME.
# The dev container bind-mounts the checkout over /workspaces/stucrs (so resources/ and results/ stay
# in the checkout) and keeps .venvs in a volume that Docker fills from this image on first use; its
# postCreateCommand rebuilds any environment whose stamp no longer matches its lock.
# The MLflow UI (`bash scripts/mlflow_ui.sh`) listens on 127.0.0.1:5000 by default; VS Code's port
# forwarding reaches that address inside the container. With plain Docker, publish the port on the
# host's loopback only and opt in inside the container:
#   docker run --rm -it -p 127.0.0.1:5000:5000 stucrs bash scripts/mlflow_ui.sh --expose

# uv is used only to install a checksum-verified CPython build of an exact patch release.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ARG PYTHON_VERSION=3.11.18
ARG APP_USER=stucrs
ARG APP_UID=1000
ARG APP_GID=1000

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    STUCRS_PYTHON=/usr/local/bin/python3.11 \
    STUCRS_ENV_MODE=gpu \
    MPLBACKEND=Agg

# System packages: certificates (MNIST download), git (commit id in run records, Snakemake),
# graphviz (stucrs.utils.plot_dot_graph), tini (PID 1 that reaps the pipeline's children).
# DL3008 (pin apt versions) is ignored on purpose: the Ubuntu archive keeps only the newest build of
# each package in jammy-updates/-security, so exact apt pins break a rebuild within weeks. The base
# image tag pins the distribution; the Python stack, which the benchmark depends on, is pinned below.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git graphviz tini \
    && rm -rf /var/lib/apt/lists/*

# Python: an exact patch release. Ubuntu 22.04's own python3.11 is a 3.11.0 release candidate and
# the deadsnakes PPA keeps only its newest build (so an apt pin cannot be reproduced later); uv
# installs the python-build-standalone build of PYTHON_VERSION and checks its SHA-256.
COPY --from=uv /uv /usr/local/bin/uv
RUN uv python install "${PYTHON_VERSION}" --no-bin \
    && ln -s "$(uv python find --managed-python --resolve-links "${PYTHON_VERSION}")" /usr/local/bin/python3.11 \
    && ln -s /usr/local/bin/python3.11 /usr/local/bin/python3 \
    && python3.11 --version \
    && rm /usr/local/bin/uv

# Non-root user that owns the checkout and its environments.
RUN groupadd --gid "${APP_GID}" "${APP_USER}" \
    && useradd --uid "${APP_UID}" --gid "${APP_GID}" --create-home --shell /bin/bash "${APP_USER}" \
    && mkdir -p /workspaces/stucrs \
    && chown "${APP_UID}:${APP_GID}" /workspaces /workspaces/stucrs

USER ${APP_USER}
WORKDIR /workspaces/stucrs

# Environments that do not contain stucrs first, so that editing stucrs/ keeps their layer cached.
# envs/build.py installs each from its hash lock (envs/locks/) with uv, itself hash-locked from PyPI.
COPY --chown=${APP_UID}:${APP_GID} envs/ envs/
RUN python3 envs/build.py dezero tensorflow --gpu

# stucrs editable (`# editable: .`): the environments point at /workspaces/stucrs/stucrs, which is
# the live checkout when the dev container mounts it there. torch holds stucrs for the PyTorch tests.
COPY --chown=${APP_UID}:${APP_GID} pyproject.toml README* ./
COPY --chown=${APP_UID}:${APP_GID} stucrs/ stucrs/
RUN python3 envs/build.py stucrs workspace torch --gpu

# The rest of the checkout (Snakefile, workflow/, config/, scripts/, tests/ ...), so that the image
# also runs without a mount; .dockerignore keeps .venvs, resources, results and .git out.
COPY --chown=${APP_UID}:${APP_GID} . .

ENV PATH=/workspaces/stucrs/.venvs/workspace/bin:${PATH}

EXPOSE 5000

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["bash"]
