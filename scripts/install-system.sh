#!/usr/bin/env bash
# Install the system packages Spaceport's embedded mode needs, when missing.
# Only acts as root on Debian/Ubuntu; elsewhere it says what to install and carries on.
set -euo pipefail

want=()
command -v dockerd >/dev/null || want+=(docker.io)
command -v redis-server >/dev/null || want+=(redis-server)
command -v mmdebstrap >/dev/null || want+=(mmdebstrap)
command -v git >/dev/null || want+=(git)
command -v mkfs.ext4 >/dev/null || want+=(e2fsprogs)   # /data disks (runtime/data_disks.py)
command -v losetup >/dev/null || want+=(mount)
[ -x /usr/lib/git-core/git-http-backend ] || want+=(git)
command -v cc >/dev/null || want+=(gcc)            # spaceport-init (runtime/app_init.py)
compgen -G "/usr/lib/*/libc.a" >/dev/null || compgen -G "/usr/lib/libc.a" >/dev/null || want+=(libc6-dev)
# The nginx data plane (SPACEPORT_PROXY=nginx, proxy/nginx.py): nginx, its Lua module, cjson.
for p in nginx libnginx-mod-http-lua lua-cjson; do
  dpkg -s "$p" >/dev/null 2>&1 || want+=("$p")
done
# Extra packages for the test suite (CI passes them in EXTRA_PACKAGES).
for p in ${EXTRA_PACKAGES:-}; do
  dpkg -s "$p" >/dev/null 2>&1 || want+=("$p")
done

if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "spaceport: please install: ${want[*]} (needs root on Debian/Ubuntu)" >&2
  exit 0
fi
echo "installing: ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Live steps, not minutes of silence: each package as it downloads and as it is set up.
apt-get install -y -q --no-install-recommends "${want[@]}" \
  | awk '/^(Get:|Setting up)/ { print "  " $0; fflush() }'
echo "installed: ${want[*]}"
