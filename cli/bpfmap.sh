#!/bin/sh
# bpfmap: the package's command. Runs cli/main.ts with Bun, or with Deno
# (--allow-ffi) where Bun is missing: the project's own copies first.
here=$(dirname "$(readlink -f "$0")")
root=$(dirname "$here")
for bun in "$root/node_modules/.bin/bun" "$(command -v bun)"; do
  [ -n "$bun" ] && [ -x "$bun" ] && exec "$bun" "$here/main.ts" "$@"
done
for deno in "$root/node_modules/.bin/deno" "$(command -v deno)"; do
  [ -n "$deno" ] && [ -x "$deno" ] && exec "$deno" run --allow-ffi --allow-read --allow-write "$here/main.ts" "$@"
done
echo "bpfmap: needs Bun or Deno (npm ci installs both)" >&2
exit 2
