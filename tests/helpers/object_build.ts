/**
 * Builds BPF objects for the object reader's tests with clang, as
 * `clang_object.ts` does for the maps object: the same flags, so the
 * objects are the same from every checkout.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** What an object test needs from the machine (see `toolTest`). */
export const CLANG_NEEDS = {
  commands: ["clang"],
  paths: ["/usr/include/bpf/bpf_helpers.h"],
} as const;

/** The repository's root folder. */
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** `tests/bpf/<name>`'s path. */
export function bpfSource(name: string): string {
  return fileURLToPath(new URL(`../bpf/${name}`, import.meta.url));
}

/**
 * Compiles `source` (a name in `tests/bpf/`, or an absolute path in the
 * repository: `examples/bpf/...`) with `clang -O2 -g -target bpf` (and
 * `-D<define>` for each of `defines`) into `<folder>/<stem>.bpf.o` and
 * returns the path; the caller removes `folder`.
 */
export function buildObject(
  source: string,
  folder: string,
  defines: readonly string[] = [],
): string {
  const path = isAbsolute(source) ? source : bpfSource(source);
  const object = join(folder, basename(path).replace(/\.c$/, ".o"));
  const arch = execFileSync("uname", ["-m"], { encoding: "utf8" }).trim();
  // The line info names the source from the repository's root (tests/bpf/..., examples/bpf/...),
  // so that the object is the same from any checkout.
  const under = relative(ROOT, dirname(path));
  const paths = ["-fdebug-compilation-dir=.", `-fdebug-prefix-map=${dirname(path)}=${under}`];
  const includes = [`-I/usr/include/${arch}-linux-gnu`];
  clang([...includes, ...paths, ...defines.map((define) => `-D${define}`), "-c", path], object);
  return object;
}

/** Runs `clang -O2 -g -target bpf ARGS -o OBJECT`, with `input` on its stdin. */
function clang(args: readonly string[], object: string, input?: string): void {
  execFileSync("clang", ["-O2", "-g", "-target", "bpf", ...args, "-o", object], {
    ...(input === undefined ? {} : { input }),
  });
}

/** Compiles C `source` given as text (no headers needed) and returns the object's bytes. */
export function compileText(source: string, flags: readonly string[] = []): Uint8Array {
  const folder = mkdtempSync(join(tmpdir(), "bpfmap-object-"));
  try {
    const object = join(folder, "text.o");
    clang([...flags, "-c", "-x", "c", "-"], object, source);
    return new Uint8Array(readFileSync(object));
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
