FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
COPY migrations ./migrations
# asyncpg: the PostgreSQL driver DATABASE_URL=postgresql+asyncpg://... needs (docker-compose.yml)
RUN pip install -c constraints.txt . "asyncpg>=0.29" \
    && useradd --create-home --uid 10001 bot \
    && mkdir -p /data && chown bot:bot /data

USER bot
# WEBHOOK_LISTEN / HTTP_LISTEN, where docker-compose.yml puts them
EXPOSE 8080
VOLUME ["/data"]
WORKDIR /data
CMD ["python", "-m", "bot"]
