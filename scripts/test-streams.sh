#!/usr/bin/env bash
# The test suite as three concurrent pytest streams (scripts/test.sh runs this once it has set up
# and linted): tests/distributed in two halves (every service its own process on Kafka, mostly
# waiting on the broker: the host-equivalence half, and the faults half followed by the backtests,
# the live-venue, market-data and end-to-end tests, which would otherwise end long before the third)
# and everything else. No test of one stream stops or reconfigures a service another uses: those
# that do run on a broker or PostgreSQL cluster of their own; the moved folders use no read-model
# database of the rest's (embedded stacks, fakes) and Kafka only on namespaces of their own, so
# they may run beside any other test.
#
# The first stream prints as it runs; the others' output (kept in files) follows when all have
# ended. Each stream prints pytest's 25 slowest durations, its wall time and exit code; any
# stream failing, or collecting no test (pytest's exit 5), fails the script. The last line sums
# the streams' results.
#
# MELTICA_TEST_DISTRIBUTED_ARGS / MELTICA_TEST_FAULTS_ARGS / MELTICA_TEST_REST_ARGS replace a
# stream's pytest arguments (split on spaces), e.g. to try this script on small test files.
set -uo pipefail
cd "$(dirname "$0")/.."

say() { echo "test.sh: $*" >&2; }

hosts="tests/distributed/test_services.py tests/distributed/test_faust_host.py tests/distributed/test_pipeline_service.py"  # share the baseline run
# run after the faults half, not in the rest (see above); none uses the shared read-model database
moved="tests/backtest tests/venues tests/marketdata tests/fakes tests/e2e"
read -r -a distributed_args <<<"${MELTICA_TEST_DISTRIBUTED_ARGS:-$hosts}"
faults=()
for f in tests/distributed/test_*.py; do
  case " $hosts " in *" $f "*) ;; *) faults+=("$f") ;; esac
done
read -r -a faults_args <<<"${MELTICA_TEST_FAULTS_ARGS:-${faults[*]} $moved}"
ignored="--ignore=tests/distributed"
for d in $moved; do ignored+=" --ignore=$d"; done
read -r -a rest_args <<<"${MELTICA_TEST_REST_ARGS:-tests $ignored}"

out=$(mktemp -d "${TMPDIR:-/tmp}/meltica-test-streams.XXXXXX")
pids=()

# On any exit: end the streams still running (each is a process group of its own), print the
# quiet stream's output if that has not happened yet (an interruption), drop the logs.
printed=
cleanup() {
  local pid name
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for name in faults rest; do
    if [ -z "$printed" ] && [ -s "$out/$name.log" ]; then
      echo "---- stream $name, so far ----"
      cat "$out/$name.log"
    fi
  done
  rm -rf "$out"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# run_stream NAME LIVE ARGS...: pytest ARGS into $out/NAME.log (and to stdout when LIVE is 1);
# "exit-code seconds" into $out/NAME.status.
run_stream() {
  local name=$1 live=$2 rc started
  shift 2
  started=$(date +%s)
  if [ "$live" = 1 ]; then
    python3 -m pytest "$@" 2>&1 | tee "$out/$name.log"
    rc=${PIPESTATUS[0]}
  else
    python3 -m pytest "$@" >"$out/$name.log" 2>&1
    rc=$?
  fi
  echo "$rc $(($(date +%s) - started))" >"$out/$name.status"
  say "stream $name ended: exit $rc after $(($(date +%s) - started)) s"
}

# count LOG WORD: the number before WORD on the log's pytest summary line (0 if none).
count() {
  grep -E '^(=+ )?[0-9]+ [a-z]+.* in [0-9.]+s' "$1" 2>/dev/null | tail -n 1 |
    grep -oE "[0-9]+ $2" | awk '{n += $1} END {print n + 0}'
}

common=(--durations=25)
set -m  # each stream in a process group of its own: an interruption ends the whole stream
say "stream distributed: pytest ${distributed_args[*]} (output follows as it runs)"
# (--timeout: a test's limit counts its set-up too, and the first distributed test sets up the
# session's baseline run; beside the other stream, on two cores, 300 s is too close to that.)
run_stream distributed 1 "${distributed_args[@]}" "${common[@]}" --timeout=600 -o cache_dir=.pytest_cache/distributed &
pids+=("$!")
say "stream faults: pytest ${faults_args[*]} (output printed once every stream has ended)"
run_stream faults 0 "${faults_args[@]}" "${common[@]}" --timeout=600 -o cache_dir=.pytest_cache/faults &
pids+=("$!")
say "stream rest: pytest ${rest_args[*]} (output printed once every stream has ended)"
run_stream rest 0 "${rest_args[@]}" "${common[@]}" -o cache_dir=.pytest_cache/rest &
pids+=("$!")
for pid in "${pids[@]}"; do wait "$pid"; done
pids=()
set +m

for name in faults rest; do
  echo
  echo "==================== stream $name ===================="
  cat "$out/$name.log" 2>/dev/null
  echo "==================== end of stream $name ===================="
done
printed=1
echo

status=0
passed=0 failed=0 skipped=0
for name in distributed faults rest; do
  read -r rc seconds 2>/dev/null <"$out/$name.status" || { rc=1 seconds=?; }
  say "stream $name: exit $rc, wall time ${seconds} s"
  if [ "$rc" = 5 ]; then
    say "stream $name collected no tests: that is a failure"
    rc=1
  fi
  if [ "$rc" != 0 ] && [ "$status" = 0 ]; then status=$rc; fi
  passed=$((passed + $(count "$out/$name.log" passed)))
  failed=$((failed + $(count "$out/$name.log" failed) + $(count "$out/$name.log" 'errors?')))
  skipped=$((skipped + $(count "$out/$name.log" skipped)))
done
echo "pytest: $passed passed, $failed failed, $skipped skipped"
exit "$status"
