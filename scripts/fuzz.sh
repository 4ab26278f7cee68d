#!/usr/bin/env bash
# Runs every cargo fuzz target for a fixed time (not in CI; issue 13 item 3).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    (default 60 s, all targets)
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Seeds come from scripts/fuzz_corpus.py (samples/ and the tests' JSON);
# the corpus grows in fuzz/corpus/<target>, crashes land in
# fuzz/artifacts/<target>/ (both git-ignored). Prints a line per target:
# executions, corpus size, and whether it crashed; record runs in
# docs/fuzzing.md. Runs under `nice`: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${1:-60}"
shift || true
mkdir -p fuzz/out
python3 scripts/fuzz_corpus.py fuzz/corpus >/dev/null
if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cd fuzz && cargo +nightly fuzz list)
fi

for t in "${TARGETS[@]}"; do
  (cd fuzz && nice -n 10 cargo +nightly fuzz build -O "$t")
done

printf '%-20s %14s %8s %s\n' target executions corpus result
status=0
for t in "${TARGETS[@]}"; do
  log="fuzz/out/$t.log"
  set +e
  (cd fuzz && nice -n 10 cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
    -max_total_time="$SECS" -print_final_stats=1 -max_len=8192 -rss_limit_mb=2048 >"../$log" 2>&1)
  rc=$?
  set -e
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  corpus=$(ls "fuzz/corpus/$t" | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="CRASH (exit $rc, see $log and fuzz/artifacts/$t/)"
    status=1
  fi
  printf '%-20s %14s %8s %s\n' "$t" "${execs:-?}" "$corpus" "$result"
done
exit "$status"
