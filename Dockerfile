# One image for every Meltica service: `docker run meltica run risk`, `... run api`, ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY schemas ./schemas
COPY alembic ./alembic
# pyproject.toml force-includes scripts/ into the wheel (`meltica dev kafka|postgres` run them)
COPY scripts ./scripts
RUN pip install ".[kafka,postgres,otlp]" && useradd --create-home meltica
USER meltica
ENV MELTICA_DATA_DIR=/home/meltica/.meltica
EXPOSE 8080 9000
ENTRYPOINT ["meltica"]
CMD ["--help"]
