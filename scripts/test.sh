#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install Meltica with its dev extras, bring up
# Kafka and PostgreSQL where this machine can (or use MELTICA_KAFKA_BOOTSTRAP /
# MELTICA_DATABASE_URL if set), then lint, type-check and run pytest: as three concurrent streams,
# tests/distributed in two halves and the rest (scripts/test-streams.sh). Extra arguments run one pytest with
# them instead, e.g. `scripts/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

in_ci() { case "${CI:-}" in 1|true|TRUE|yes) return 0 ;; *) return 1 ;; esac; }
say() { echo "test.sh: $*" >&2; }

python3 -m pip install -q --disable-pip-version-check -e ".[dev]"

if [ -z "${MELTICA_KAFKA_BOOTSTRAP:-}" ]; then
  if command -v java >/dev/null && command -v mvn >/dev/null; then
    MELTICA_KAFKA_BOOTSTRAP=$(bash scripts/kafka.sh start)
    export MELTICA_KAFKA_BOOTSTRAP
  elif in_ci; then
    say "CI needs Kafka, but java or mvn is missing"; exit 1
  else
    say "no java/mvn: Kafka tests will skip"
  fi
fi

# The SASL/SCRAM listener of scripts/kafka.sh, for tests/integration/test_kafka_security.py.
if [ -n "${MELTICA_KAFKA_BOOTSTRAP:-}" ] && [ -z "${MELTICA_TEST_KAFKA_SASL_BOOTSTRAP:-}" ]; then
  if sasl=$(bash scripts/kafka.sh sasl-bootstrap 2>/dev/null); then
    MELTICA_TEST_KAFKA_SASL_BOOTSTRAP=$sasl
    MELTICA_TEST_KAFKA_SASL_PASSWORD_FILE=$(bash scripts/kafka.sh sasl-password-file)
    export MELTICA_TEST_KAFKA_SASL_BOOTSTRAP MELTICA_TEST_KAFKA_SASL_PASSWORD_FILE
  else
    say "no SASL listener from scripts/kafka.sh: the Kafka security tests will skip (fail under CI)"
  fi
fi

if [ -z "${MELTICA_DATABASE_URL:-}" ]; then
  if [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then
    MELTICA_DATABASE_URL=$(bash scripts/postgres.sh start)
    export MELTICA_DATABASE_URL
  elif in_ci; then
    say "CI needs PostgreSQL, but cannot install it (not root, no sudo)"; exit 1
  else
    say "cannot install PostgreSQL here (not root, no sudo): Postgres tests will skip"
  fi
fi

case "${MELTICA_DATABASE_URL:-}" in
  ""|postgresql*://*) ;;
  *) say "MELTICA_DATABASE_URL is not a PostgreSQL URL: $MELTICA_DATABASE_URL"; exit 1 ;;
esac
case "${MELTICA_KAFKA_BOOTSTRAP:-}" in
  *[[:space:]]*) say "MELTICA_KAFKA_BOOTSTRAP is not host:port: $MELTICA_KAFKA_BOOTSTRAP"; exit 1 ;;
esac
say "Kafka: ${MELTICA_KAFKA_BOOTSTRAP:-none}; PostgreSQL: ${MELTICA_DATABASE_URL:-none}"

# Debian's chromium for the browser tests of the web UI (tests/e2e/test_ui.py); never `playwright install`.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  elif sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
  elif in_ci; then
    say "CI needs chromium for the UI tests, but cannot install it (not root, no sudo)"; exit 1
  else
    say "cannot install chromium here (not root, no sudo): the UI tests will skip"
  fi
fi

# Alert rules and their unit tests: promtool comes with Debian's `prometheus` package.
if ! command -v promtool >/dev/null && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q prometheus >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null; } || true
  elif sudo -n true 2>/dev/null; then
    sudo -n apt-get install -y -q prometheus >/dev/null 2>&1 || true
  fi
fi
if command -v promtool >/dev/null; then
  promtool check rules deploy/prometheus/alerts.yml
  promtool check config deploy/prometheus/prometheus.yml
  promtool test rules deploy/prometheus/alerts.test.yml
elif in_ci; then
  say "CI needs promtool (apt-get install prometheus) to check the alert rules"; exit 1
else
  say "no promtool: the alert rules are not checked"
fi

ruff check .
ruff format --check .
mypy
bandit -q -c pyproject.toml -r src

if [ "$#" = 0 ]; then
  exec bash scripts/test-streams.sh
fi

set +e
python3 -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  say "pytest collected no tests: that is a failure"
  exit 1
fi
exit "$rc"
