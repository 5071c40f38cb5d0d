#!/bin/sh
# bpfmap: the package's command. Runs cli/main.ts with Bun, or with Deno
# (--allow-ffi) where Bun is missing. Looked for in this order: the project's
# own copies (a clone's node_modules, then the node_modules/.bin this package
# is installed beside, for `npm install --save-dev bun` or `deno`), then PATH.
# Only shell built-ins (and readlink, if there is one): PATH may hold nothing
# but the runtime. Deno gets no config and no node_modules mode: it refuses to
# run TypeScript from a node_modules folder it manages, which is where an
# installed bpfmap lives.
self=$0
if real=$(readlink -f "$0" 2>/dev/null) && [ -n "$real" ]; then self=$real; fi
here=${self%/*}
[ "$here" = "$self" ] && here=.
# Without readlink, $0 may be npm's link in node_modules/.bin: its package is beside it.
[ -f "$here/main.ts" ] || [ ! -f "$here/../bpfmap/cli/main.ts" ] || here=$here/../bpfmap/cli
root=${here%/*}
[ "$root" = "$here" ] && root=.
for bun in "$root/node_modules/.bin/bun" "$root/../.bin/bun" "$(command -v bun)"; do
  [ -n "$bun" ] && [ -x "$bun" ] && exec "$bun" "$here/main.ts" "$@"
done
for deno in "$root/node_modules/.bin/deno" "$root/../.bin/deno" "$(command -v deno)"; do
  [ -n "$deno" ] && [ -x "$deno" ] && exec "$deno" run --no-config --node-modules-dir=none --allow-ffi --allow-read --allow-write "$here/main.ts" "$@"
done
printf '%s\n' >&2 \
  "bpfmap: needs Bun or Deno to run, and found neither on PATH. Install one:" \
  "  Bun:  curl -fsSL https://bun.sh/install | bash      (https://bun.sh)" \
  "  Deno: curl -fsSL https://deno.land/install.sh | sh  (https://deno.com)" \
  "or add one to this project: npm install --save-dev bun   (or deno)"
exit 2
