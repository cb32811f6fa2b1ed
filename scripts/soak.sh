#!/usr/bin/env bash
# Soak the SIGKILL crash suites over many seeds (outside CI, which runs a few):
#   scripts/soak.sh --seeds 100                    # embedded (tests/e2e/test_crash.py), seeds 1..100
#   scripts/soak.sh --seeds 20 --from 101 --suite kafka   # Kafka services (needs MELTICA_KAFKA_BOOTSTRAP)
#   scripts/soak.sh --seeds 100 --suite all
# Prints seeds run, passed, lost and doubled events, diverged seeds (outcome differs from the
# uninterrupted run in any way) and wall time; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

n=10 first=1 suite=embedded
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) n="$2"; shift 2 ;;
    --from) first="$2"; shift 2 ;;
    --suite) suite="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$n$first" in *[!0-9]*) echo "soak.sh: --seeds and --from take numbers" >&2; exit 2 ;; esac

declare -A tests=(
  [embedded]="tests/e2e/test_crash.py::test_sigkill_at_random_points_changes_nothing"
  [kafka]="tests/distributed/test_services.py::test_sigkill_any_service_loses_and_doubles_nothing"
)
case "$suite" in
  all) suites=(embedded kafka) ;;
  embedded|kafka) suites=("$suite") ;;
  *) echo "soak.sh: --suite is embedded, kafka or all" >&2; exit 2 ;;
esac

report=$(mktemp -t meltica-soak.XXXXXX.jsonl)
export MELTICA_SOAK_SEEDS="$first-$((first + n - 1))" MELTICA_SOAK_REPORT="$report"
started=$(date +%s)
rc=0
for s in "${suites[@]}"; do
  echo "soak.sh: $s suite, seeds $MELTICA_SOAK_SEEDS" >&2
  python3 -m pytest "${tests[$s]}" -q -p no:cacheprovider || rc=1
done
python3 - "$report" "$n" "${suites[@]}" <<'PY' || rc=1
import json, sys
report, n, suites = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = [json.loads(line) for line in open(report)]
bad = False
for suite in suites:
    mine = [r for r in rows if r["suite"] == suite]
    lost = sum(r["lost"] for r in mine)
    doubled = sum(r["doubled"] for r in mine)
    diverged = sum(r["diverged"] for r in mine)
    passed = sum(1 for r in mine if not (r["lost"] or r["doubled"] or r["diverged"]))
    kills = sum(r["kills"] for r in mine)
    secs = sum(r["seconds"] for r in mine)
    unfinished = n - len(mine)  # a seed that errored before comparing (timeout, crash of the harness)
    print(f"{suite}: seeds {len(mine)}/{n} compared, {passed} equal, lost {lost}, doubled {doubled}, "
          f"diverged {diverged}, unfinished {unfinished}; {kills} SIGKILLs, {secs:.0f}s in runs")
    for r in mine:
        if r["lost"] or r["doubled"] or r["diverged"]:
            print(f"  seed {r['seed']}: lost {r['lost']}, doubled {r['doubled']}, diverged {r['diverged']}")
    bad = bad or unfinished > 0 or passed < len(mine)
sys.exit(1 if bad else 0)
PY
echo "soak.sh: wall time $(( $(date +%s) - started ))s; per-seed results in $report" >&2
exit "$rc"
