/**
 * Objects for the object loader's tests: built by clang from `tests/bpf/`,
 * kept as a fixture beside the test file's transcripts (so a replay needs no
 * clang), and loaded by bpftool (libbpf) on a bpffs of their own to compare.
 *
 * @module
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readEnv } from "../../ffi/live.ts";
import type { BpfObject } from "../../mod.ts";
import { TRANSCRIPT_ENV } from "../../replay/system.ts";
import { freshBpffs } from "./bpffs.ts";
import { liveTest, replayRun } from "./live.ts";
import { buildObject, CLANG_NEEDS } from "./object_build.ts";
import { toolTest } from "./tools.ts";
import { FIXTURES } from "./transcript.ts";

/** Builds `tests/bpf/<source>` into a folder of its own; `fn` gets the object's path. */
export function withBuiltObject<T>(source: string, fn: (path: string) => T): T {
  const folder = mkdtempSync(join(tmpdir(), "bpfmap-loader-"));
  try {
    return fn(buildObject(source, folder));
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/**
 * The bytes of `tests/bpf/<source>` built, for the test file at
 * `moduleUrl`: the fixture where the run replays (no clang needed), else
 * clang's build, written as the fixture when recording and checked against
 * it when verifying (the transcripts hold its instructions).
 */
export function objectFixture(moduleUrl: string, source: string): () => Uint8Array {
  const fixture = join(
    FIXTURES,
    basename(fileURLToPath(moduleUrl)),
    source.replace(/\.c$/, ".o"),
  );
  const mode = readEnv(TRANSCRIPT_ENV);
  let bytes: Uint8Array | undefined;
  return () => {
    if (bytes !== undefined) return bytes;
    if (replayRun || (mode === undefined && existsSync(fixture))) {
      return bytes = new Uint8Array(readFileSync(fixture));
    }
    const built = withBuiltObject(source, (path) => new Uint8Array(readFileSync(path)));
    if (mode === "verify") {
      assert.deepEqual(built, new Uint8Array(readFileSync(fixture)), "clang's build differs");
    } else {
      writeFileSync(fixture, built);
    }
    return bytes = built;
  };
}

/** A tool test that also needs the kernel: skipped where the run replays. */
export function kernelToolTest(name: string, fn: () => void): void {
  if (replayRun) liveTest(name, fn);
  else toolTest(name, { ...CLANG_NEEDS, commands: ["clang", "bpftool"] }, fn);
}

/** `bpftool ARGS`' output. */
export function bpftool(...args: string[]): string {
  return execFileSync("bpftool", args, { encoding: "utf8" });
}

/**
 * Builds `tests/bpf/<source>` and loads it with `bpftool prog loadall` on a
 * fresh bpffs (programs pinned at `<bpffs>/progs/<name>`, maps at
 * `<bpffs>/maps/<name>`); `fn` gets the object's path and the bpffs path.
 */
export function withLibbpfLoaded(source: string, fn: (path: string, bpffs: string) => void): void {
  const bpffs = freshBpffs("bpfmap-loader-");
  try {
    withBuiltObject(source, (path) => {
      bpftool("prog", "loadall", path, `${bpffs.path}/progs`, "pinmaps", `${bpffs.path}/maps`);
      fn(path, bpffs.path);
    });
  } finally {
    bpffs.unmount();
  }
}

/** `bpftool -j KIND show pinned PIN`, parsed. */
export function bpftoolShow(kind: "map" | "prog", pin: string): Record<string, unknown> {
  return JSON.parse(bpftool("-j", kind, "show", "pinned", pin));
}

/**
 * Asserts that the maps and programs of `object` are those libbpf loaded
 * from the same file into `bpffs` (see {@linkcode withLibbpfLoaded}): each
 * map's name, type, sizes, entries, flags and whether it has BTF; each
 * program's type, name and instructions' length after relocation. libbpf
 * pins a data map under its map name, its dots made underscores.
 */
export function assertLikeLibbpf(object: BpfObject, bpffs: string): void {
  for (const [name, map] of object.maps) {
    const ours = map.info();
    const pin = name.startsWith(".") ? ours.name.replaceAll(".", "_") : name;
    const theirs = bpftoolShow("map", `${bpffs}/maps/${pin}`);
    assert.deepEqual(
      [ours.name, ours.typeName, ours.keySize, ours.valueSize, ours.maxEntries, ours.flags],
      [
        theirs.name,
        theirs.type,
        theirs.bytes_key,
        theirs.bytes_value,
        theirs.max_entries,
        theirs.flags,
      ],
      name,
    );
    assert.equal(ours.btfId > 0, ((theirs.btf_id as number | undefined) ?? 0) > 0, name);
  }
  for (const [name, program] of object.programs) {
    const theirs = bpftoolShow("prog", `${bpffs}/progs/${name}`);
    const ours = program.info();
    // The same instructions after relocation: libbpf appended the subprograms as we do.
    assert.deepEqual(
      [ours.typeName, ours.name, ours.xlatedLength],
      [theirs.type, theirs.name, theirs.bytes_xlated],
      name,
    );
  }
}
