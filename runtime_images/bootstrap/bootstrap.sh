#!/bin/sh
# Build Spaceport's base images without a container registry (offline bootstrap):
#   mmdebstrap -> spaceport/debian-rootfs:bookworm -> spaceport/python:3.11 (+ python-cuda).
# Extra arguments go to the builder, e.g. `--gpu`, `--force`, `--python 3.11`.
# The work is done by spaceport_builder.base_images; this is only a convenience entry point.
set -eu
repo="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
exec "$python" -m spaceport_builder.base_images --offline "$@"
