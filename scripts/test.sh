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

step "setup: the tools the tests use, from Debian (bpftool: the CLI tests' reference; clang and libbpf-dev: BPF objects with clang's BTF; gcc: layouts against <linux/bpf.h>; strace: the sizes the kernel saw)"
need=()
for tool in bpftool clang gcc strace; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -e /usr/include/linux/bpf.h ] || need+=(linux-libc-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
  else
    echo "missing and cannot be installed here: ${need[*]} (the tests that need them skip, and fail with CI=true)"
  fi
fi
for tool in bpftool clang gcc strace; do
  command -v "$tool" >/dev/null 2>&1 && echo "$tool: $("$tool" --version 2>/dev/null | head -n 1 || "$tool" version | head -n 1)"
done

step "format (dprint check)"
dprint check

step "types: Deno (deno check)"
deno check .

step "types: Bun (tsc with bun-types)"
tsc -p tsconfig.json

# Each pass writes a JUnit report; scripts/summary.ts reads the four. The
# folders deno tests (and whose JSDoc examples it runs) are deno.json's
# "test.include": the one list, which scripts/flaky.sh and `deno task test` use too.
step "1/4 Deno, live, transcripts verified against fixtures/ (and every JSDoc example)"
BPFMAP_TRANSCRIPT=verify deno test --doc --allow-ffi --allow-read --allow-write --allow-env \
  --allow-run --v8-flags=--expose-gc --junit-path="$logs/1.xml" 2>&1 | tee "$logs/deno-live.log"

step "2/4 Bun, live, transcripts verified against fixtures/"
BPFMAP_TRANSCRIPT=verify bun test --timeout 120000 --reporter=junit --reporter-outfile="$logs/2.xml" \
  tests/ 2>&1 | tee "$logs/bun-live.log"

step "3/4 Deno, replay only, without --allow-ffi"
BPFMAP_TRANSCRIPT=replay BPFMAP_FIXTURE_LOG="$logs/used" deno test --allow-read --allow-write \
  --allow-env --allow-run --junit-path="$logs/3.xml" tests/ 2>&1 | tee "$logs/deno-replay.log"

step "4/4 Bun, replay only, live backend forbidden"
BPFMAP_FORBID_LIVE=1 BPFMAP_TRANSCRIPT=replay BPFMAP_FIXTURE_LOG="$logs/used" \
  bun test --timeout 120000 --reporter=junit --reporter-outfile="$logs/4.xml" tests/ 2>&1 |
  tee "$logs/bun-replay.log"

step "fixtures no test used"
unused=$(comm -23 <(find "$PWD/fixtures" -name '*.json' | sort) <(sort -u "$logs/used"))
if [ -n "$unused" ]; then printf '%s\n' "$unused"; else echo "none"; fi

# One line per pass, then the distinct cases: the four passes run the same
# cases, so no total adds them up (set -o pipefail has already failed the run
# if a pass failed).
step "summary"
deno run --allow-read scripts/summary.ts "1/4 deno live=$logs/1.xml" "2/4 bun live=$logs/2.xml" \
  "3/4 deno replay=$logs/3.xml" "4/4 bun replay=$logs/4.xml"
