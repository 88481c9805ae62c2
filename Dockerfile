# The Spaceport control plane and worker image, used by compose.yaml on a production host.
FROM python:3.11-slim-bookworm
# gcc, libc6-dev: spaceport-init, compiled once per node (platform/spaceport/engine/app_init.py)
# nginx, libnginx-mod-http-lua, lua-cjson: the proxy (platform/spaceport/proxy/nginx.py)
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      git docker.io mmdebstrap ca-certificates tini gcc libc6-dev \
      nginx libnginx-mod-http-lua lua-cjson \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/spaceport
COPY pyproject.toml README.md ./
COPY platform platform
COPY builder builder
COPY runtime_images runtime_images
COPY examples examples
RUN pip install --no-cache-dir .
ENV SPACEPORT_DATA=/var/lib/spaceport SPACEPORT_RUNTIME_IMAGES=/opt/spaceport/runtime_images
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["spaceport", "api"]
