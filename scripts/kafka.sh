#!/usr/bin/env bash
# Single-node KRaft Kafka for development and CI, from Maven Central jars.
#
#   scripts/kafka.sh install   resolve the broker jars into .cache/kafka (git-ignored)
#   scripts/kafka.sh start     install if needed, format storage, start on 127.0.0.1, wait until it answers
#   scripts/kafka.sh stop      stop the broker started by this script
#   scripts/kafka.sh status    exit 0 when the broker answers metadata requests
#   scripts/kafka.sh sasl-bootstrap      the SASL_PLAINTEXT (SCRAM-SHA-256/512) listener's host:port
#   scripts/kafka.sh sasl-password-file  the file holding the SCRAM password of user `meltica`
#
# The broker has a PLAINTEXT listener (the bootstrap `start` prints) and a SASL_PLAINTEXT listener
# for user `meltica` (password made once, random, in .cache/kafka/sasl-password).
# Environment: MELTICA_KAFKA_PORT (default 19092; the controller uses the next port),
# MELTICA_KAFKA_SASL_PORT (default MELTICA_KAFKA_PORT + 2), MELTICA_KAFKA_HOME (default .cache/kafka),
# MELTICA_KAFKA_RUN (default $MELTICA_KAFKA_HOME/run: a second broker on other ports needs its own),
# MELTICA_KAFKA_ACLS=1 (ACLs enforced, deny by default; the PLAINTEXT listener's anonymous user and
# `meltica` are super users: tests/distributed/test_acls_on_kafka.py).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/scripts/kafka/pom.xml")
home=${MELTICA_KAFKA_HOME:-$root/.cache/kafka}
libs=$home/libs-$version
run=${MELTICA_KAFKA_RUN:-$home/run}  # storage, logs and pid: another for a second broker
port=${MELTICA_KAFKA_PORT:-19092}
controller_port=$((port + 1))
bootstrap=127.0.0.1:$port
sasl_port=${MELTICA_KAFKA_SASL_PORT:-$((port + 2))}
sasl_bootstrap=127.0.0.1:$sasl_port
sasl_user=meltica
secret_file=$home/sasl-password

log() { echo "kafka.sh: $*" >&2; }

install() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  log "resolving kafka_2.13:$version from Maven Central into $libs"
  local attempt
  for attempt in 1 2 3; do
    rm -rf "$libs"
    if mvn -q -B -f "$root/scripts/kafka/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$libs" -DincludeScope=runtime >"$home/mvn.log" 2>&1; then
      touch "$libs/.complete"
      return 0
    fi
    log "maven attempt $attempt failed:"; tail -n 20 "$home/mvn.log" >&2; sleep $((attempt * 5))
  done
  return 1
}

java_cmd() {
  java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$run/logs" -Dlog4j2.configurationFile="$root/scripts/kafka/log4j2.properties" \
    -cp "$libs/*" "$@"
}

write_config() {
  mkdir -p "$run/logs" "$run/data"
  cat >"$run/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port,SASL://127.0.0.1:$sasl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL://127.0.0.1:$sasl_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$run/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.flush.interval.messages=9223372036854775807
transaction.max.timeout.ms=900000
CONF
  if [ "${MELTICA_KAFKA_ACLS:-}" = 1 ]; then
    cat >>"$run/server.properties" <<CONF
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:$sasl_user
allow.everyone.if.no.acl.found=false
CONF
  fi
}

# The SCRAM password of user `meltica`: random, made once, kept outside the storage directory.
sasl_password() {
  if [ ! -s "$secret_file" ]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(16))' >"$secret_file.tmp")
    mv "$secret_file.tmp" "$secret_file"
  fi
  cat "$secret_file"
}

answers() {
  python3 - "$bootstrap" <<'PY' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=5)
sys.exit(0 if md.brokers else 1)
PY
}

# Exit 0 when the SASL listener accepts user `meltica` with the password of $secret_file.
sasl_answers() {
  python3 - "$sasl_bootstrap" "$sasl_user" "$secret_file" <<'PY' 2>/dev/null
import sys
from pathlib import Path
from confluent_kafka.admin import AdminClient
bootstrap, user, secret = sys.argv[1:]
config = {
    "bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": user,
    "sasl.password": Path(secret).read_text().strip(),
}
md = AdminClient(config).list_topics(timeout=5)
sys.exit(0 if md.brokers else 1)
PY
}

# Create or update user `meltica`'s SCRAM credentials through the PLAINTEXT listener: a storage
# formatted without `--add-scram` (or with another password) gets them without a re-format.
ensure_scram() {
  sasl_password >/dev/null
  python3 - "$bootstrap" "$sasl_user" "$secret_file" <<'PY'
import sys
from pathlib import Path
from confluent_kafka.admin import (
    AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion,
)
bootstrap, user, secret = sys.argv[1:]
password = Path(secret).read_text().strip().encode()
admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the futures are done
for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):  # one per request
    upsert = UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, 8192), password)
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)
PY
}

# Wait (up to 30 s) until the SASL listener accepts the credentials, setting them if needed.
sasl_ready() {
  if sasl_answers; then return 0; fi
  ensure_scram >&2 || log "setting the SCRAM credentials of $sasl_user failed"
  local deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if sasl_answers; then return 0; fi
    sleep 1
  done
  log "the SASL listener on $sasl_bootstrap did not accept user $sasl_user within 30 s"
  return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/${1:-$port}") 2>/dev/null; }

is_running() { [ -f "$run/kafka.pid" ] && kill -0 "$(cat "$run/kafka.pid")" 2>/dev/null; }

start_once() {
  write_config
  if [ ! -f "$run/data/meta.properties" ]; then
    local pw
    pw=$(sasl_password)
    java_cmd kafka.tools.StorageTool format --standalone --ignore-formatted \
      -t "$(java_cmd kafka.tools.StorageTool random-uuid)" -c "$run/server.properties" \
      --add-scram "SCRAM-SHA-256=[name=$sasl_user,password=$pw]" \
      --add-scram "SCRAM-SHA-512=[name=$sasl_user,password=$pw]" >"$run/logs/format.log" 2>&1 \
      || { log "storage format failed"; cat "$run/logs/format.log" >&2; return 1; }
  fi
  # Every partition keeps a few files open, and a test run creates thousands of partitions (each
  # test's namespace has its own topics): raise the broker's open-file limit as far as we may.
  ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  log "open-file limit for the broker: $(ulimit -n)"
  java_cmd kafka.Kafka "$run/server.properties" >"$run/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$run/kafka.pid"
  local i
  for i in $(seq 1 90); do
    if ! is_running; then log "broker exited during start-up"; return 1; fi
    if port_open && answers; then sasl_ready; return; fi
    sleep 1
  done
  log "broker did not answer within 90 s"
  return 1
}

print_logs() {
  log "---- broker stdout ----"; tail -n 60 "$run/logs/stdout.log" >&2 2>/dev/null || true
  log "---- broker server.log ----"; tail -n 120 "$run/logs/server.log" >&2 2>/dev/null || true
}

start() {
  install
  if answers; then
    if port_open "$sasl_port" && sasl_ready; then log "a broker already answers on $bootstrap; using it"; echo "$bootstrap"; return 0; fi
    if [ -z "$(broker_pids)" ]; then
      log "a broker not started by this script answers on $bootstrap (no SASL listener on $sasl_bootstrap); using it"
      echo "$bootstrap"; return 0
    fi
    log "the broker on $bootstrap has no SASL listener on $sasl_bootstrap: restarting it (storage kept)"
    stop
  fi
  local attempt
  for attempt in 1 2 3; do
    if start_once; then log "ready on $bootstrap"; echo "$bootstrap"; return 0; fi
    print_logs
    stop || true
    log "start attempt $attempt failed; wiping storage and retrying"
    rm -rf "$run/data"
    sleep 2
  done
  return 1
}

# The broker of this checkout: the pid file's, and any process running on its server.properties
# (a broker whose pid file went missing would otherwise outlive `stop` and be reused by `start`).
broker_pids() {
  { is_running && cat "$run/kafka.pid"; pgrep -f "kafka.Kafka $run/server.properties" || true; } | sort -u
}

stop() {
  local pid
  for pid in $(broker_pids); do
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$run/kafka.pid"
}

mkdir -p "$home"
case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) answers ;;
  logs) print_logs ;;
  sasl-bootstrap) sasl_answers || { log "no SASL listener answers on $sasl_bootstrap"; exit 1; }; echo "$sasl_bootstrap" ;;
  sasl-password-file) sasl_password >/dev/null; echo "$secret_file" ;;
  *) echo "usage: $0 install|start|stop|status|logs|sasl-bootstrap|sasl-password-file" >&2; exit 2 ;;
esac
