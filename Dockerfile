# syntax=docker/dockerfile:1.7
#
# One image per component, all from the same locked dependencies (uv.lock):
#
#   docker build --target gateway      -t notifications/gateway .
#   docker build --target sender-sms   -t notifications/sender-sms .
#   docker build --target sender-email -t notifications/sender-email .
#   docker build --target sender-slack -t notifications/sender-slack .
#   docker build --target callback-sender -t notifications/callback-sender .
#   docker build --target init         -t notifications/init .   # the local stack's one-shot setup
#
# docker-compose.yml builds them all; terraform/ runs the first five on ECS Fargate.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the virtualenv, exactly as locked ------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app
# The dependencies alone first, so this layer is rebuilt only when the lock changes (not the
# workspace's own packages: the project and notifications_client, whose code comes next).
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace
# Then the project itself (editable: the code stays in /app), its modules precompiled because the
# service user cannot write __pycache__ at run time.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
    && python -m compileall -q -x '/\.venv/' /app

# --- runtime: what every component shares ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# A fixed uid/gid, so file ownership on shared volumes is predictable (see the init target).
# /run/mtls is where the gateway finds its certificates (a bind mount or, on ECS, a task volume).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0750 /run/mtls

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /app
# Owned by root: the service user can read the code but not change it.
COPY --from=build /app /app
USER app

# --- gateway: mTLS API on 8443, ops on 9000 -------------------------------------------------
FROM runtime AS gateway
# Inside a container the ops port must listen beyond loopback (the default) to be reachable.
ENV GATEWAY_OPS_HOST=0.0.0.0
EXPOSE 8443 9000
# ECS copies this directory's ownership to the task volume that carries the PEM files.
VOLUME ["/run/mtls"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_OPS_PORT', '9000'), timeout=2)"]
CMD ["python", "-m", "gateway"]

# --- senders: consume their SQS queue; ops on 9001/9002/9003 ----------------------------------
FROM runtime AS sender-sms
ENV SMS_SENDER_OPS_HOST=0.0.0.0
EXPOSE 9001
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SMS_SENDER_OPS_PORT', '9001'), timeout=2)"]
CMD ["python", "-m", "sender_sms"]

FROM runtime AS sender-email
ENV EMAIL_SENDER_OPS_HOST=0.0.0.0
EXPOSE 9002
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('EMAIL_SENDER_OPS_PORT', '9002'), timeout=2)"]
CMD ["python", "-m", "sender_email"]

FROM runtime AS sender-slack
ENV SLACK_SENDER_OPS_HOST=0.0.0.0
EXPOSE 9003
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SLACK_SENDER_OPS_PORT', '9003'), timeout=2)"]
CMD ["python", "-m", "sender_slack"]

# --- callback sender: status callbacks to the clients' receivers; ops on 9004 ------------------
FROM runtime AS callback-sender
ENV CALLBACKS_OPS_HOST=0.0.0.0
EXPOSE 9004
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CALLBACKS_OPS_PORT', '9004'), timeout=2)"]
CMD ["python", "-m", "callback_sender"]

# --- init: the local stack's one-shot setup (docker compose's `init` service) ---------------
# `python -m stack.prepare`, as `make up` and the tests prepare the system: certificates into
# /run/mtls, database migrations, the SNS/SQS topology and the SES sender identity (asked for
# only while it is not verified). Every step is idempotent, so each `docker compose up` runs it
# again safely. On AWS, Terraform owns the topology and identity, and the migrate task runs the
# migrations.
FROM runtime AS init
COPY --chmod=0755 <<'EOF' /usr/local/bin/notifications-init
#!/bin/sh
set -eu
certs=/run/mtls

python -m stack.prepare --certs-dir "$certs"
# In compose, /run/mtls is ./mtls of the checkout. Hand the files to the checkout's owner, so
# the host's test suite can read its client keys, with the group of the image's user, so the
# gateway (which runs as that user) can read its server key. Needs root (compose runs init so).
if [ "$(id -u)" = 0 ]; then
    if chown "$(stat -c %u "$certs"):app" "$certs"/*.pem && chmod g+r "$certs"/server.key.pem; then
        :
    else
        echo "init: could not change the owner of the files in $certs; the gateway may not read its key" >&2
    fi
fi
EOF
HEALTHCHECK NONE
CMD ["notifications-init"]
