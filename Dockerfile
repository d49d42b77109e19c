# bananabot: one process; SQLite under /data by default, BANANABOT_DATABASE_URL=postgresql://… for replicas.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BANANABOT_DATABASE_URL=sqlite:////data/bananabot.db \
    BANANABOT_OUTPUT_DIR=/data/out \
    BANANABOT_HTTP_PORT=8080

WORKDIR /app
# Dependencies first, for layer caching.
COPY pyproject.toml README.md ./
COPY bot/__init__.py bot/__init__.py
RUN pip install --no-cache-dir . && pip uninstall -y bananabot
COPY bot bot
COPY commands commands
COPY adapters adapters
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 bananabot \
    && mkdir -p /data && chown bananabot /data

USER 10001
VOLUME ["/data"]
EXPOSE 8080
# /healthz answers 503 when the database or an adapter is down.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['BANANABOT_HTTP_PORT']}/healthz\", timeout=4)"]
# SIGTERM: adapters stop, turns in flight finish (or are refunded), then the process exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["bananabot"]
CMD ["run"]
