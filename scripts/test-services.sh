#!/usr/bin/env bash
# Install and start every real part the test suite uses, on a new Debian/Ubuntu machine or this
# one again (each step is skipped when already done): Docker Engine with gVisor's runsc
# registered, Redis, PostgreSQL with a throwaway role, Chromium, wrk, nginx with its Lua module,
# fonts, Prometheus (its server and promtool, for tests/test_metrics.py). `make test` runs it,
# so a new user's `make test` runs what CI runs and skips nothing.
# Prints one line on stdout: the PostgreSQL URL for SPACEPORT_TEST_POSTGRES_URL (the role's
# password is new each run); everything else goes to stderr.
#
# The daemons it starts must not hold that stdout: `pg=$(bash scripts/test-services.sh)` waits
# until every writer of it has closed it, so a dockerd or postgres keeping it open would hang
# make test for ever. Hence the body runs as `main >&2` (bash keeps the real stdout on a
# close-on-exec descriptor meanwhile) and every daemon gets /dev/null for stdin.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

main() {

  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  PACKAGES=(docker.io redis-server postgresql chromium mmdebstrap git ca-certificates python3-venv
    gcc libc6-dev wrk nginx-light libnginx-mod-http-lua lua-cjson fonts-noto-color-emoji iptables
    e2fsprogs mount runsc docker-registry prometheus pebble dnsmasq-base)
  want=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || want+=("$p"); done
  # nginx-light or the full nginx both serve: either one is enough
  if [[ " ${want[*]} " == *" nginx-light "* ]] && dpkg -s nginx >/dev/null 2>&1; then
    want=("${want[@]/nginx-light/}")
  fi
  if [ -n "${want[*]// /}" ]; then
    echo "test-services: installing ${want[*]}"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2068
    $SUDO apt-get install -y -qq --no-install-recommends ${want[@]} >/dev/null
  fi

  # gVisor as the engine runtime "runsc" (before dockerd starts; a running one reloads it)
  $SUDO bash scripts/register-gvisor.sh

  # Docker Engine
  if ! /usr/bin/docker info >/dev/null 2>&1; then
    echo "test-services: starting dockerd"
    $SUDO sh -c 'dockerd </dev/null >/var/log/dockerd.log 2>&1 &'
    for _ in $(seq 60); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  /usr/bin/docker info >/dev/null || { echo "dockerd did not start"; tail -20 /var/log/dockerd.log; exit 1; }

  # Redis
  if ! redis-cli ping >/dev/null 2>&1; then
    echo "test-services: starting redis-server"
    # --dir: a daemon's working directory must outlive this checkout
    $SUDO redis-server --daemonize yes --port 6379 --bind 127.0.0.1 --save '' --dir /tmp </dev/null
    for _ in $(seq 20); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  redis-cli ping >/dev/null || { echo "redis did not start"; exit 1; }

  # PostgreSQL: a throwaway role for the production-path tests
  PGVER=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_isready -q -h 127.0.0.1; then
    echo "test-services: starting PostgreSQL $PGVER"
    if command -v pg_ctlcluster >/dev/null && pg_lsclusters -h | grep -q .; then
      $SUDO pg_ctlcluster "$PGVER" main start </dev/null || true
    else
      $SUDO pg_createcluster "$PGVER" main --start </dev/null || true
    fi
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
  fi
  pg_isready -q -h 127.0.0.1 || { echo "postgresql did not start"; exit 1; }
  as_postgres() { if [ -z "$SUDO" ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
  # One password per machine, kept root-only: test runs side by side share the role, and a new
  # password would cut off a run in progress.
  local saved=/var/lib/postgresql/.spaceport_test_password
  PGPASS=$($SUDO cat "$saved" 2>/dev/null || true)
  if [ -z "$PGPASS" ]; then
    PGPASS=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    echo "$PGPASS" | $SUDO sh -c "umask 077 && cat > $saved"
  fi
  as_postgres psql -qtc "SELECT 1 FROM pg_roles WHERE rolname='spaceport_test'" | grep -q 1 || \
    as_postgres psql -qc "CREATE ROLE spaceport_test LOGIN CREATEDB"
  as_postgres psql -qc "ALTER ROLE spaceport_test PASSWORD '$PGPASS'"
}

PGPASS=""
main >&2
echo "postgresql+psycopg://spaceport_test:$PGPASS@127.0.0.1:5432/postgres"
