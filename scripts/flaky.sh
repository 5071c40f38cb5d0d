#!/usr/bin/env bash
# `npm run flaky`: runs each test file of tests/ (or the files given) N times
# (FLAKY_RUNS, default 20) live in Deno and in Bun, transcripts verified, with
# both CPUs kept busy by two background loops: a test that passes only on an
# idle machine fails here. Reports per file and runtime how many runs failed,
# prints the first failure of each, and exits 1 if any run failed.
#
#   scripts/flaky.sh                      every tests/*.test.ts, 20 runs each
#   FLAKY_RUNS=100 scripts/flaky.sh tests/btf.test.ts
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

runs=${FLAKY_RUNS:-20}
if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
  echo "FLAKY_RUNS must be a positive integer, got '$runs'" >&2
  exit 2
fi
if [ $# -gt 0 ]; then files=("$@"); else files=(tests/*.test.ts); fi
for file in "${files[@]}"; do
  [ -f "$file" ] || { echo "no such test file: $file" >&2; exit 2; }
done

logs=$(mktemp -d)
load=()
cleanup() {
  [ ${#load[@]} -eq 0 ] || kill "${load[@]}" 2>/dev/null
  rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in 1 2; do
  (while :; do :; done) &
  load+=($!)
done

run() { # runtime file: one verified live run, as passes 1 and 2 of npm test run it
  if [ "$1" = deno ]; then
    BPFMAP_TRANSCRIPT=verify deno test --allow-ffi --allow-read --allow-write --allow-env \
      --allow-run --v8-flags=--expose-gc "$2"
  else
    BPFMAP_TRANSCRIPT=verify bun test --timeout 120000 "$2"
  fi
}

report=()
failures=()
any=0
for file in "${files[@]}"; do
  for runtime in deno bun; do
    failed=0
    for ((n = 1; n <= runs; n++)); do
      log="$logs/run.log"
      if ! run "$runtime" "$file" >"$log" 2>&1; then
        failed=$((failed + 1))
        if [ "$failed" -eq 1 ]; then
          first="$logs/$(basename "$file").$runtime.log"
          { echo "== $file, $runtime, run $n"; sed 's/\x1b\[[0-9;]*m//g' "$log" | tail -n 60; } >"$first"
          failures+=("$first")
        fi
      fi
      [ -t 1 ] && printf '\r%s %s: run %d of %d, %d failed' "$file" "$runtime" "$n" "$runs" "$failed"
    done
    [ -t 1 ] && printf '\r'
    report+=("$(printf '%-32s %-4s %d of %d runs failed' "$file" "$runtime" "$failed" "$runs")")
    printf '%s\n' "${report[-1]}"
    [ "$failed" -eq 0 ] || any=1
  done
done

for failure in "${failures[@]}"; do printf '\n'; cat "$failure"; done
printf '\n== under load, %d runs each\n' "$runs"
printf '%s\n' "${report[@]}"
exit "$any"
