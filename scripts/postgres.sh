#!/usr/bin/env bash
# PostgreSQL for development and CI, from Debian's packages.
#
#   scripts/postgres.sh install   apt-get install postgresql (needs root)
#   scripts/postgres.sh start     install if needed, start the cluster, create role and database, print the URL
#   scripts/postgres.sh stop      stop the cluster
#   scripts/postgres.sh status    exit 0 when the server accepts connections
#   scripts/postgres.sh drop      stop and delete the cluster (not `main`): a test's own server
#
# Environment: MELTICA_PG_PORT (default 5432), MELTICA_PG_USER/PASSWORD/DB (default meltica),
# MELTICA_PG_CLUSTER (default main): another name and port make a second server with its own
# data directory (/var/lib/postgresql/<version>/<name>), e.g. for a test that stops and starts it.
set -euo pipefail
# Only `start` prints to stdout (the URL, for $(...)); every tool's chatter goes to stderr.

port=${MELTICA_PG_PORT:-5432}
cluster=${MELTICA_PG_CLUSTER:-main}
user=${MELTICA_PG_USER:-meltica}
password=${MELTICA_PG_PASSWORD:-meltica}
db=${MELTICA_PG_DB:-meltica}
url="postgresql+psycopg://$user:$password@127.0.0.1:$port/$db"

log() { echo "postgres.sh: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_version() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1; }

install() {
  if [ -n "$(pg_version)" ] && command -v pg_ctlcluster >/dev/null; then return 0; fi
  log "installing postgresql from Debian's packages"
  local attempt
  for attempt in 1 2 3; do
    if as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null; then
      return 0
    fi
    log "apt-get attempt $attempt failed"; sleep $((attempt * 5))
  done
  return 1
}

ready() { pg_isready -q -h 127.0.0.1 -p "$port"; }

exists() { pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$1 $cluster$"; }

server_log() { log "---- server log ----"; tail -n 50 "/var/log/postgresql/postgresql-$1-$cluster.log" >&2 || true; }

start() {
  install
  local v; v=$(pg_version)
  if ! exists "$v"; then
    as_root pg_createcluster "$v" "$cluster" -p "$port" >&2 || { log "pg_createcluster $v $cluster failed"; return 1; }
  fi
  local attempt i
  for attempt in 1 2 3; do
    if ready; then break; fi
    as_root pg_ctlcluster "$v" "$cluster" start >&2 || { log "start attempt $attempt of cluster $cluster failed"; server_log "$v"; }
    for i in $(seq 1 60); do ready && break; sleep 1; done
  done
  ready || { log "cluster $cluster did not accept connections on port $port"; server_log "$v"; return 1; }
  as_root su postgres -c "psql -q -p $port -v ON_ERROR_STOP=1" >&2 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
    CREATE ROLE $user LOGIN PASSWORD '$password' CREATEDB;
  END IF;
END \$\$;
SQL
  if ! as_root su postgres -c "psql -tAq -p $port -c \"SELECT 1 FROM pg_database WHERE datname = '$db'\"" | grep -q 1; then
    as_root su postgres -c "createdb -p $port -O $user $db" >&2
  fi
  log "ready at 127.0.0.1:$port/$db (cluster $cluster)"
  echo "$url"
}

stop() {
  local v; v=$(pg_version)
  [ -n "$v" ] && as_root pg_ctlcluster "$v" "$cluster" stop 2>/dev/null || true
}

drop() {
  if [ "$cluster" = main ]; then log "refusing to drop the main cluster"; return 2; fi
  local v; v=$(pg_version)
  if [ -n "$v" ] && exists "$v"; then as_root pg_dropcluster --stop "$v" "$cluster" >&2; fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) ready ;;
  drop) drop ;;
  *) echo "usage: $0 install|start|stop|status|drop" >&2; exit 2 ;;
esac
