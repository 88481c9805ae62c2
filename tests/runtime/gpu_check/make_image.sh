#!/usr/bin/env bash
# Build the GPU check image (a few MB: the binary and the C library it links) and save it
# compressed for a machine without a registry. Usage: make_image.sh OUT_DIR
set -euo pipefail
out=${1:?usage: make_image.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
gcc -O2 -o "$ctx/nvml-check" "$here/nvml_check.c" -ldl
mkdir -p "$ctx/root/lib64" "$ctx/root/lib/x86_64-linux-gnu" "$ctx/root/usr/local/nvidia/lib64"
for lib in $(ldd "$ctx/nvml-check" | awk '/=>/{print $3} /ld-linux/{print $1}'); do
  cp -L "$lib" "$ctx/root$lib"
done
cp "$ctx/nvml-check" "$ctx/root/nvml-check"
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib64
ENTRYPOINT ["/nvml-check"]
DOCKERFILE
DOCKER_BUILDKIT=1 /usr/bin/docker build -q -t spaceport/gpu-check:1 "$ctx" >/dev/null
mkdir -p "$out"
/usr/bin/docker save spaceport/gpu-check:1 | xz -6 > "$out/gpu-check.tar.xz"
du -h "$out/gpu-check.tar.xz"
