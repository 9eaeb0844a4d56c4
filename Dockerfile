# WindFlow server and worker image.
#   docker build -t windflow .
#   docker run -e WINDFLOW_SECRET_KEY=... -p 127.0.0.1:8000:8000 windflow          # serve
#   docker run -e WINDFLOW_SECRET_KEY=... windflow worker                          # worker

# Stage 1: the web app's bundle (web/dist), built from package-lock.json exactly.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# Stage 2: install the project with its dependencies into /opt/venv. The source stays in
# /opt/windflow (an editable install) so the server finds playbooks/, roles/ and web/dist next to it.
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /opt/windflow
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY server ./server
COPY playbooks ./playbooks
COPY roles ./roles
COPY --from=web /web/dist ./web/dist
RUN /opt/venv/bin/pip install -e .

# Stage 3: the runtime, with nothing but the venv and an unprivileged user.
FROM python:3.11-slim-bookworm

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WINDFLOW_HOST=0.0.0.0 \
    WINDFLOW_DATA_DIR=/var/lib/windflow

# Ansible reaches VM and bare-metal targets over SSH.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 windflow \
 && useradd --system --uid 10001 --gid windflow --no-create-home \
        --home-dir /var/lib/windflow --shell /usr/sbin/nologin windflow \
 && install -d -o windflow -g windflow -m 0750 /var/lib/windflow

COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/windflow /opt/windflow

WORKDIR /var/lib/windflow
VOLUME ["/var/lib/windflow"]
EXPOSE 8000
USER windflow

# Slim images have no curl; the standard library is enough for a liveness probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WINDFLOW_PORT', '8000') + '/api/v1/health', timeout=4)"]

ENTRYPOINT ["windflow"]
CMD ["serve"]
