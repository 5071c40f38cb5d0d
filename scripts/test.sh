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

step "tests: Deno"
deno test --allow-ffi --allow-read --allow-write --allow-env --allow-run --v8-flags=--expose-gc tests/

step "tests: Bun"
bun test --timeout 120000 tests/
