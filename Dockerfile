# The feature server: `featurestore serve` on port 8000, as a non-root user.
#
#   docker build -t featurestore .
#   docker run -p 8000:8000 -v "$PWD:/srv/featurestore" \
#       -e FEATURESTORE_ONLINE=redis://redis:6379/0 featurestore
#
# The project folder (registry.yaml, the offline DuckDB file and pushed events) is
# mounted at /srv/featurestore and must be writable by uid 10001. docs/deployment.md
# covers workers, shutdown, logs, Redis settings and health checks.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/featurestore
COPY pyproject.toml README.md ./
COPY featurestore ./featurestore
COPY transforms ./transforms
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin featurestore \
    && mkdir -p /srv/featurestore \
    && chown featurestore:featurestore /srv/featurestore

USER 10001:10001
# The shared kernels compile once here, into the user's Numba cache, not at each start.
RUN python -c "from transforms.engine import warm; warm()"

WORKDIR /srv/featurestore
ENV FEATURESTORE_REGISTRY=/srv/featurestore/registry.yaml
EXPOSE 8000
STOPSIGNAL SIGTERM
# 200 from /health is healthy (status ok or degraded); 503 (online store unreachable)
# or no answer is not.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["featurestore", "serve", "--host", "0.0.0.0", "--port", "8000", "--access-log", "--log-format", "json"]
