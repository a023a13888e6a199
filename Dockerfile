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

# Build arguments for other sources (the defaults are the real image; each is one line here):
#   BASE            base image (default: the pinned CUDA 12.4 + cuDNN runtime on Ubuntu 22.04)
#   PYTHON_SOURCE   uv (default: uv installs the exact CPython PYTHON_VERSION, checksum-verified) or
#                   system (the base's own python3.11 from its apt archive, where GitHub is unreachable)
#   FRAMEWORKS      framework environments to build beside the workspace (default all four;
#                   "stucrs" gives the light image of scripts/container_check.sh)
#   ENV_MODE        gpu (default: CuPy and PyTorch CUDA locks) or cpu
#   APP_UID/APP_GID the non-root user's ids (match the host user so bind mounts stay writable)
# Behind a TLS-intercepting proxy, give the build the host's CA bundle as a secret; it is mounted
# only for the steps that download and never stored in the image:
#   podman build --secret id=host_ca,src=/etc/ssl/certs/ca-certificates.crt ...
ARG BASE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
ARG PYTHON_SOURCE=uv

# uv is used only to install a checksum-verified CPython build of an exact patch release.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${BASE} AS base

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

# Python (PYTHON_SOURCE=uv): an exact patch release. Ubuntu 22.04's own python3.11 is a 3.11.0
# release candidate and the deadsnakes PPA keeps only its newest build (so an apt pin cannot be
# reproduced later); uv installs the python-build-standalone build of PYTHON_VERSION and checks its
# SHA-256.
FROM base AS python-uv
ARG PYTHON_VERSION=3.11.18
COPY --from=uv /uv /usr/local/bin/uv
RUN --mount=type=secret,id=host_ca \
    if [ -s /run/secrets/host_ca ]; then export SSL_CERT_FILE=/run/secrets/host_ca; fi \
    && uv python install "${PYTHON_VERSION}" --no-bin \
    && ln -s "$(uv python find --managed-python --resolve-links "${PYTHON_VERSION}")" /usr/local/bin/python3.11 \
    && ln -s /usr/local/bin/python3.11 /usr/local/bin/python3 \
    && python3.11 --version \
    && rm /usr/local/bin/uv

# Python (PYTHON_SOURCE=system): the base's python3.11 and its venv module (on Ubuntu 22.04 that is
# 3.11.0rc1 from jammy-updates: fine for the test build, not for measurements).
FROM base AS python-system
# DL3008: as above, jammy-updates keeps only the newest build of python3.11 (no exact apt pin).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python3.11 \
    && ln -sf /usr/local/bin/python3.11 /usr/local/bin/python3 \
    && python3.11 --version

# DL3006 (tag the image): this FROM names one of the two stages above, chosen by PYTHON_SOURCE.
# hadolint ignore=DL3006
FROM python-${PYTHON_SOURCE}

ARG APP_USER=stucrs
ARG APP_UID=1000
ARG APP_GID=1000
ARG FRAMEWORKS="stucrs dezero tensorflow torch"
ARG ENV_MODE=gpu

# The environments this image holds; the dev container's postCreateCommand rebuilds exactly these
# when their locks changed (an old .venvs volume never hides a newer image's environments).
ENV STUCRS_ENV_MODE=${ENV_MODE} \
    STUCRS_ENVS="workspace ${FRAMEWORKS}"

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
RUN --mount=type=secret,id=host_ca,mode=0444 \
    if [ -s /run/secrets/host_ca ]; then export SSL_CERT_FILE=/run/secrets/host_ca PIP_CERT=/run/secrets/host_ca; fi \
    && python3 envs/build.py dezero tensorflow --image-envs "--${ENV_MODE}"

# stucrs editable (`# editable: .`): the environments point at /workspaces/stucrs/stucrs, which is
# the live checkout when the dev container mounts it there. torch holds stucrs for the PyTorch tests.
COPY --chown=${APP_UID}:${APP_GID} pyproject.toml README* ./
COPY --chown=${APP_UID}:${APP_GID} stucrs/ stucrs/
RUN --mount=type=secret,id=host_ca,mode=0444 \
    if [ -s /run/secrets/host_ca ]; then export SSL_CERT_FILE=/run/secrets/host_ca PIP_CERT=/run/secrets/host_ca; fi \
    && python3 envs/build.py stucrs workspace torch --image-envs "--${ENV_MODE}"

# The rest of the checkout (Snakefile, workflow/, config/, scripts/, tests/ ...), so that the image
# also runs without a mount; .dockerignore keeps .venvs, resources, results and .git out.
COPY --chown=${APP_UID}:${APP_GID} . .

ENV PATH=/workspaces/stucrs/.venvs/workspace/bin:${PATH}

EXPOSE 5000

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["bash"]
