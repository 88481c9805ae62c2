#!/usr/bin/env bash
# Register gVisor's `runsc` with the Docker engine as the runtime "runsc" (docs/security.md,
# "gVisor"): apps of a flavor with `runtime: runsc`, or of every flavor with
# SPACEPORT_APP_RUNTIME=runsc, then run on gVisor's kernel instead of the host's.
#
# Flags given to runsc:
#   (no --oci-seccomp: this runsc answers the profile's ENOSYS rule for clone3 with EPERM, so
#   glibc cannot start threads; the host-side seccomp filter of gVisor's own kernel stays)
#   --overlay2=root:memory  the app's writes outside its volumes (/data) stay in the sandbox's
#                           memory, capped by the flavor's memory limit, never on the host's disk
#   --network=$RUNSC_NETWORK (default host) Debian 12's runsc (2022-12-19) takes every network
#                           namespace for the host's on newer kernels (it tests for
#                           /proc/sys/net/core/rmem_default, which they have in each one) and
#                           refuses its own network stack; `host` passes sockets to the host
#                           kernel inside the container's own namespace and firewall. Set
#                           RUNSC_NETWORK=sandbox with a newer runsc.
# Merges into an existing /etc/docker/daemon.json and makes a running dockerd reload it.
set -euo pipefail

DAEMON_JSON=${DAEMON_JSON:-/etc/docker/daemon.json}
RUNSC_NETWORK=${RUNSC_NETWORK:-host}

if ! command -v runsc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runsc >/dev/null
  else
    echo "register-gvisor: install runsc (gVisor) first, as root: apt-get install runsc" >&2
    exit 1
  fi
fi
RUNSC=$(command -v runsc)

mkdir -p "$(dirname "$DAEMON_JSON")"
python3 - "$DAEMON_JSON" "$RUNSC" "$RUNSC_NETWORK" <<'PY'
import json, os, sys
path, runsc, network = sys.argv[1:4]
config = {}
if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path) as fh:
        config = json.load(fh)
config.setdefault("runtimes", {})["runsc"] = {
    "path": runsc,
    "runtimeArgs": [f"--network={network}", "--overlay2=root:memory"],
}
tmp = path + ".tmp"
with open(tmp, "w") as fh:
    json.dump(config, fh, indent=2)
os.replace(tmp, path)
PY

# The machine's dockerd (its default pidfile): `pidof dockerd` would also find other engines,
# such as the dev cluster's nodes (spaceport.devcluster), which do not serve `docker info`.
PIDFILE=${DOCKERD_PIDFILE:-/var/run/docker.pid}
if [ -s "$PIDFILE" ] && pid=$(cat "$PIDFILE") && kill -0 "$pid" 2>/dev/null; then
  kill -HUP $pid  # dockerd reloads its runtimes without restarting containers
  for _ in $(seq 20); do
    docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && exit 0
    sleep 0.5
  done
  echo "register-gvisor: dockerd did not pick up the runsc runtime; restart it" >&2
  exit 1
fi
