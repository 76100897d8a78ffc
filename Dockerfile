# crmbot: the Telegram bot, with SQLite data in a volume (or PostgreSQL via CRMBOT_DATABASE_URL).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pg_dump/pg_restore for `crmbot db backup` and the nightly backup on PostgreSQL.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 crmbot \
    && useradd --system --uid 10001 --gid crmbot --home-dir /home/crmbot --create-home crmbot

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY nlp ./nlp
COPY analytics ./analytics
COPY db ./db
RUN pip install . \
    && crmbot nlu train --output /app/model \
    && mkdir -p /data && chown crmbot:crmbot /data

# The NLU model is trained at build time; data (SQLite file, backups) lives in /data.
ENV CRMBOT_DATA_DIR=/data \
    CRMBOT_MODEL_PATH=/app/model
VOLUME ["/data"]
USER crmbot
EXPOSE 8443

# Migrations run automatically at start. Set CRMBOT_TELEGRAM_TOKEN (and the rest, see README).
CMD ["crmbot", "run"]
