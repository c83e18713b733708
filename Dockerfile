# syntax=docker/dockerfile:1
# curation-pipeline images. Two final targets, one tag scheme (<app version>-ray<Ray version>):
#   docker build -t curation-pipeline:0.1.0-ray2.60.0 .                      # cpu (default)
#   docker build --target gpu -t curation-pipeline-gpu:0.1.0-ray2.60.0 .     # CUDA + [gpu]
# Both run as the non-root user 10001 with `pipeline` as entrypoint; the default command is the
# control plane (`pipeline serve`, configured by environment: see deploy/README.md). KubeRay
# replaces the command with `ray start` in Ray pods; `docker run IMAGE run spec.yaml` runs a job.
#
# Ray joins a node to a cluster only if its Ray version and its Python version, down to the
# patch level, equal the head's. So both targets install the same PYTHON_VERSION and
# RAY_VERSION, and deploy/ sets the same rayVersion and image tag (tests/test_deploy.py checks
# this file, deploy/ and pyproject.toml against each other).
ARG PYTHON_VERSION=3.11.14
ARG RAY_VERSION=2.60.0
ARG UV_VERSION=0.13.8
# Match the CUDA runtime of the torch wheels that the [gpu] extra resolves to (CUDA 13.0 for
# vllm 0.33 / torch 2.14 when this was written); GPU nodes need a driver that supports it.
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-runtime-ubuntu24.04
# Object-store paths in specs: both images install the [s3] and [gcs] extras (s3fs, gcsfs);
# other fsspec backends (e.g. adlfs for az://) can be added to the pip lines below.

# ---- cpu-builder: compilers stay in this stage -------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS cpu-builder
ARG RAY_VERSION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# A compiler for any dependency without a wheel for the build platform (e.g. on arm64).
# DL3008: apt versions are not pinned; the base image tag fixes the Debian release, and the
# archive drops superseded versions, so exact pins would break rebuilds after security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY stages ./stages
# `.` (not -e): the venv must not point back into /src, which the final stage does not have.
RUN /opt/venv/bin/pip install --no-cache-dir "ray[data]==${RAY_VERSION}" ".[s3,gcs]"

# ---- gpu-builder: a relocatable CPython of the same version, and the [gpu] extra -----------
# The CUDA base has no Python 3.11 of its own; uv installs a standalone build of exactly
# PYTHON_VERSION into /opt/python, which the gpu stage copies next to the venv.
FROM python:${PYTHON_VERSION}-slim-bookworm AS gpu-builder
ARG PYTHON_VERSION
ARG RAY_VERSION
ARG UV_VERSION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_NO_CACHE=1
RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
 && uv python install "${PYTHON_VERSION}" \
 && uv venv --python "${PYTHON_VERSION}" /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY stages ./stages
RUN uv pip install --python /opt/venv/bin/python \
      "ray[data]==${RAY_VERSION}" ".[gpu,s3,gcs]" \
 && /opt/venv/bin/python -c "import platform, ray; \
assert platform.python_version() == '${PYTHON_VERSION}', platform.python_version(); \
assert ray.__version__ == '${RAY_VERSION}', ray.__version__"

# ---- gpu: CUDA runtime + the venv --------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# wget: KubeRay's default Ray pod probes run `wget ... | grep success`.
# gcc, libc6-dev: the one exception to "no build tools at run time". Triton (vLLM's kernels)
# compiles a small launcher module with the system C compiler on first use and fails without.
# /etc/profile.d: KubeRay starts Ray with `bash -l`, whose /etc/profile may reset PATH.
# DL3008 as above; SC2016: $PATH is meant literally, for the login shell to expand.
# hadolint ignore=DL3008,SC2016
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 pipeline \
 && useradd --uid 10001 --gid 10001 --create-home --shell /bin/bash pipeline \
 && echo 'export PATH=/opt/venv/bin:$PATH' > /etc/profile.d/pipeline-venv.sh
COPY --from=gpu-builder /opt/python /opt/python
COPY --from=gpu-builder /opt/venv /opt/venv
COPY examples /opt/pipeline/examples
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/pipeline
EXPOSE 8000
# For `pipeline serve` (the default command); Kubernetes ignores this and uses its probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["pipeline"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# ---- cpu: the default image (last stage, so a plain `docker build` builds it) ------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# wget: KubeRay's default Ray pod probes run `wget ... | grep success`.
# /etc/profile.d: KubeRay starts Ray with `bash -l`, and Debian's /etc/profile resets PATH.
# DL3008 as above; SC2016: $PATH is meant literally, for the login shell to expand.
# hadolint ignore=DL3008,SC2016
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 pipeline \
 && useradd --uid 10001 --gid 10001 --create-home --shell /bin/bash pipeline \
 && echo 'export PATH=/opt/venv/bin:$PATH' > /etc/profile.d/pipeline-venv.sh
COPY --from=cpu-builder /opt/venv /opt/venv
# Sample corpus for the RayJob example (deploy/examples/rayjob) and quick checks.
COPY examples /opt/pipeline/examples
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/pipeline
EXPOSE 8000
# For `pipeline serve` (the default command); Kubernetes ignores this and uses its probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["pipeline"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
