#!/usr/bin/env bash
# On the GPU machine (no engine, no registry): start the packed engine, load the check image,
# install the few wheels the runtime code needs into a scratch folder, run run_check.py.
# Usage (repo root): bash tests/runtime/gpu_check/on_gpu_host.sh KIT   (see docs/gpu.md)
set -euo pipefail
kit=$(cd "${1:?usage: on_gpu_host.sh KIT}" && pwd)
py=${GPU_PYTHON:-/opt/torch/.venv/bin/python}
export DOCKER_HOST=$(bash "$kit/engine/start-engine.sh")
export PATH=/tmp/engine/bin:$PATH LD_LIBRARY_PATH=/tmp/engine/lib
trap 'kill "$(cat /tmp/engine/dockerd.pid)" 2>/dev/null || true' EXIT
xz -dc "$kit/gpu-check.tar.xz" | docker load
"$py" -m pip install -q --no-index --find-links "$kit/wheels" --target /tmp/gpu-check-site \
  pydantic pydantic-settings sqlalchemy docker structlog nvidia-ml-py pyyaml
nvidia-smi -L 2>/dev/null || /usr/local/nvidia/bin/nvidia-smi -L
export PYTHONPATH=/tmp/gpu-check-site:$PWD/platform
export SPACEPORT_DATA=/tmp/gpu-check-data SPACEPORT_GPU_DISCOVERY=nvml SPACEPORT_GPU_MODE=devices
export SPACEPORT_GPU_DRIVER_DIR=/usr/local/nvidia/lib64
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:$LD_LIBRARY_PATH  # NVML for the discovery
"$py" tests/runtime/gpu_check/run_check.py
