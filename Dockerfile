# The image of the compose stack (docker-compose.yml): the `planning` command,
# the stream worker, dagster-webserver and dagster-daemon, all from one build.
# The base is pinned to an exact Python release and Debian suite; bump it on
# purpose, not by surprise.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PLANNING_HOME=/var/lib/planning \
    DAGSTER_HOME=/opt/dagster/home

WORKDIR /app

# Dependencies first, so a code change does not reinstall them: the pins live
# in pyproject.toml, and the `stack` extra adds dagster-postgres.
COPY pyproject.toml README.md ./
COPY events ./events
COPY projections ./projections
COPY pipelines ./pipelines
COPY dagster_home ./dagster_home
RUN pip install '.[stack]'

# The compose instance (Postgres storage, one run at a time) becomes the
# image's dagster.yaml; PLANNING_HOME is a volume shared by the worker and Dagster.
RUN useradd --system --uid 10001 --home-dir /var/lib/planning planning \
 && mkdir -p "$DAGSTER_HOME" "$PLANNING_HOME" \
 && cp dagster_home/dagster.compose.yaml "$DAGSTER_HOME/dagster.yaml" \
 && chown -R planning "$DAGSTER_HOME" "$PLANNING_HOME"

USER planning
VOLUME ["/var/lib/planning"]

CMD ["planning", "--help"]
