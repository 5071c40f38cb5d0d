#!/usr/bin/env bash
# `npm test`: format check, type checks for both runtimes, then the whole
# suite under Deno and under Bun. With CI=true on Linux, a live test that
# cannot run fails instead of skipping (tests/helpers/live.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

step() { printf '\n== %s\n' "$*"; }

step "format (dprint check)"
dprint check

step "types: Deno (deno check)"
deno check mod.ts tests/ bench/ cli/

step "types: Bun (tsc with bun-types)"
tsc -p tsconfig.json

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

step "tests: Deno (with every JSDoc example, run as a doc test)"
deno test --doc --allow-ffi --allow-read --allow-write --allow-env --allow-run --v8-flags=--expose-gc \
  tests/ ./*.ts ffi/*.ts 2>&1 | tee "$logs/deno.log"

step "tests: Bun"
bun test --timeout 120000 tests/ 2>&1 | tee "$logs/bun.log"

# One closing line for both runners (set -o pipefail has already failed the
# run if either did). Deno: "ok | 28 passed (50 steps) | 0 failed"; Bun: " 66 pass" / " 0 fail".
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$logs/deno.log" | grep -E '^(ok|FAILED) \|' | tail -n 1)
deno_passed=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$plain")
deno_failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$plain")
bun_passed=$(grep -E '^ *[0-9]+ pass$' "$logs/bun.log" | tail -n 1 | tr -dc '0-9')
bun_failed=$(grep -E '^ *[0-9]+ fail$' "$logs/bun.log" | tail -n 1 | tr -dc '0-9')
printf '\ntests: %d passed, %d failed\n' \
  $((deno_passed + bun_passed)) $((deno_failed + bun_failed))
