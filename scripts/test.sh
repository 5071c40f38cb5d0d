#!/usr/bin/env bash
# `npm test`: format check, type checks for both runtimes, then four passes:
#   1. Deno, live: every test against the kernel, transcript tests verified
#      call by call against fixtures/ (BPFMAP_TRANSCRIPT=verify), with every
#      JSDoc example run as a doc test;
#   2. Bun, live, the same;
#   3. Deno, replay only, WITHOUT --allow-ffi: proves the replay path loads no FFI;
#   4. Bun, replay only, with the live backend forbidden (BPFMAP_FORBID_LIVE=1).
# Then a report of fixtures no test used. With CI=true on Linux, a live test
# that cannot run fails instead of skipping (tests/helpers/live.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

step() { printf '\n== %s\n' "$*"; }
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
touch "$logs/used"

step "setup: bpftool (the CLI tests' reference), clang and libbpf-dev (a BPF object with clang's BTF), from Debian"
if ! command -v bpftool >/dev/null 2>&1 || ! command -v clang >/dev/null 2>&1 ||
  [ ! -e /usr/include/bpf/bpf_helpers.h ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    packages=(bpftool clang libbpf-dev)
    apt-get install -y -qq "${packages[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq "${packages[@]}" >/dev/null; }
  else
    echo "bpftool, clang or libbpf-dev is missing and cannot be installed here: the tests that need them will say so"
  fi
fi
command -v bpftool && bpftool version | head -n 1 || true
command -v clang && clang --version | head -n 1 || true

step "format (dprint check)"
dprint check

step "types: Deno (deno check)"
deno check mod.ts tests/ bench/ cli/ btf/

step "types: Bun (tsc with bun-types)"
tsc -p tsconfig.json

step "1/4 Deno, live, transcripts verified against fixtures/ (and every JSDoc example)"
BPFMAP_TRANSCRIPT=verify deno test --doc --allow-ffi --allow-read --allow-write --allow-env \
  --allow-run --v8-flags=--expose-gc tests/ ./*.ts ffi/*.ts replay/*.ts codec/*.ts btf/*.ts \
  cli/btf_format.ts 2>&1 | tee "$logs/deno-live.log"

step "2/4 Bun, live, transcripts verified against fixtures/"
BPFMAP_TRANSCRIPT=verify bun test --timeout 120000 tests/ 2>&1 | tee "$logs/bun-live.log"

step "3/4 Deno, replay only, without --allow-ffi"
BPFMAP_TRANSCRIPT=replay BPFMAP_FIXTURE_LOG="$logs/used" deno test --allow-read --allow-write \
  --allow-env --allow-run tests/ 2>&1 | tee "$logs/deno-replay.log"

step "4/4 Bun, replay only, live backend forbidden"
BPFMAP_FORBID_LIVE=1 BPFMAP_TRANSCRIPT=replay BPFMAP_FIXTURE_LOG="$logs/used" \
  bun test --timeout 120000 tests/ 2>&1 | tee "$logs/bun-replay.log"

step "fixtures no test used"
unused=$(comm -23 <(find "$PWD/fixtures" -name '*.json' | sort) <(sort -u "$logs/used"))
if [ -n "$unused" ]; then printf '%s\n' "$unused"; else echo "none"; fi

# One closing line for all four passes (set -o pipefail has already failed
# the run if any did). Deno: "ok | 28 passed (50 steps) | 0 failed"; Bun: " 66 pass" / " 0 fail".
passed=0
failed=0
for log in "$logs"/deno-*.log; do
  line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \|' | tail -n 1)
  passed=$((passed + $(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")))
  failed=$((failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
done
for log in "$logs"/bun-*.log; do
  passed=$((passed + $(grep -E '^ *[0-9]+ pass$' "$log" | tail -n 1 | tr -dc '0-9')))
  failed=$((failed + $(grep -E '^ *[0-9]+ fail$' "$log" | tail -n 1 | tr -dc '0-9')))
done
printf '\ntests: %d passed, %d failed\n' "$passed" "$failed"
