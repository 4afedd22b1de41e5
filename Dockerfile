# The image of the compose stack (docker-compose.yml): the `planning` command,
# the stream worker, dagster-webserver and dagster-daemon, all from one build.
# The bases are pinned to exact Node and Python releases and a Debian suite;
# bump them on purpose, not by surprise.

# GOV.UK Frontend for the web site (docs/web.md), from the lock file, without
# the test-only packages; only its directory reaches the image, not Node.
FROM node:20.19.5-bookworm-slim AS govuk-frontend
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts \
 && rm -r node_modules/govuk-frontend/dist/govuk/assets/fonts  # GDS Transport: GOV.UK services only

FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PLANNING_HOME=/var/lib/planning \
    DAGSTER_HOME=/opt/dagster/home \
    PLANNING_WEB_ASSETS=/opt/planning/node_modules

WORKDIR /app

# Dependencies first, so a code change does not reinstall them: the pins live
# in pyproject.toml, and the `stack` extra adds dagster-postgres.
COPY pyproject.toml README.md ./
COPY events ./events
COPY projections ./projections
COPY pipelines ./pipelines
COPY dagster_home ./dagster_home
RUN pip install '.[stack]'

# The site's assets, where $PLANNING_WEB_ASSETS points: `planning serve`
# refuses to start the site without them.
COPY --from=govuk-frontend /build/node_modules/govuk-frontend /opt/planning/node_modules/govuk-frontend

# The compose instance (Postgres storage, one run at a time) becomes the
# image's dagster.yaml; PLANNING_HOME is a volume shared by the worker and Dagster.
RUN useradd --system --uid 10001 --home-dir /var/lib/planning planning \
 && mkdir -p "$DAGSTER_HOME" "$PLANNING_HOME" \
 && cp dagster_home/dagster.compose.yaml "$DAGSTER_HOME/dagster.yaml" \
 && chown -R planning "$DAGSTER_HOME" "$PLANNING_HOME"

USER planning
VOLUME ["/var/lib/planning"]

CMD ["planning", "--help"]
