# bananabot: one process, SQLite under /data by default (set BANANABOT_DATABASE_URL for Postgres).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BANANABOT_DATABASE_URL=sqlite:////data/bananabot.db \
    BANANABOT_OUTPUT_DIR=/data/out

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

USER bananabot
VOLUME ["/data"]
# SIGTERM stops adapters and finishes cleanly (bananabot run handles it).
STOPSIGNAL SIGTERM
ENTRYPOINT ["bananabot"]
CMD ["run"]
