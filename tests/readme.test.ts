// README.md's TypeScript examples run as a reader would run them: each ```ts block that imports
// bpfmap ("./mod.ts", "bpfmap", "bpfmap/testing") is written to a file of its own in a scratch
// folder, its imports pointed at this checkout, and run by `deno run --allow-all` and by `bun`;
// it must exit 0, so its asserts are the test. The block that is a test file (`counter.test.ts`)
// is run by `deno test` and `bun test`: once live, which records its fixture, then replayed with
// no FFI. A block that cannot run as it stands is listed in NOT_RUN with the reason.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { FORBID_LIVE_ENV } from "../ffi/live.ts";
import { TRANSCRIPT_ENV } from "../mod.ts";
import { RUNTIMES } from "./helpers/example_run.ts";
import { liveTest, liveUnavailable, replayRun } from "./helpers/live.ts";
import { CLANG_NEEDS } from "./helpers/object_build.ts";
import { toolTest } from "./helpers/tools.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Where each bpfmap entry a block may import is in this checkout. */
const ENTRIES: Record<string, string> = {
  "./mod.ts": "mod.ts",
  "bpfmap": "mod.ts",
  "bpfmap/testing": "testing/mod.ts",
};

/** A ```ts block of README.md: its section, its place among the section's blocks, its code. */
interface Block {
  /** `"Programs #2"`: the heading above it, and which of that section's ts blocks it is. */
  name: string;
  code: string;
}

/** README.md's ```ts blocks that import bpfmap, named by the heading they sit under. */
function readmeBlocks(): Block[] {
  const blocks: Block[] = [];
  const perHeading = new Map<string, number>();
  let heading = "(top)";
  let code: string[] | undefined;
  for (const line of readFileSync(join(ROOT, "README.md"), "utf8").split("\n")) {
    if (code !== undefined) {
      if (line === "```") {
        const n = (perHeading.get(heading) ?? 0) + 1;
        perHeading.set(heading, n);
        const text = code.join("\n") + "\n";
        if (/from "(\.\/mod\.ts|bpfmap(\/testing)?)"/.test(text)) {
          blocks.push({ name: `${heading} #${n}`, code: text });
        }
        code = undefined;
      } else {
        code.push(line);
      }
    } else if (line === "```ts") {
      code = [];
    } else if (/^#{1,6} /.test(line)) {
      heading = line.replace(/^#+ /, "");
    }
  }
  assert.equal(code, undefined, "README.md ends inside a ```ts block");
  return blocks;
}

/** Blocks that do not run as they stand, and why. Keep it short: fix a block rather than list it. */
const NOT_RUN: Record<string, string> = {};

/** Blocks that build a program with clang (the others need the kernel only). */
const NEEDS_CLANG = new Set([
  "Programs #2",
  "Object files #1",
  "Events: ring buffers, perf buffers and mapped memory #1",
]);

/** `code` with its bpfmap imports pointed at this checkout's files (absolute file URLs). */
function pointedHere(code: string): string {
  return code.replace(/from "(\.\/mod\.ts|bpfmap(?:\/testing)?)"/g, (_, entry: string) => {
    return `from ${JSON.stringify(new URL(ENTRIES[entry]!, `file://${ROOT}`).href)}`;
  });
}

let folder: string | undefined;
after(() => folder && rmSync(folder, { recursive: true, force: true }));
/** A folder of this block's own under this run's scratch folder (its cwd: blocks write files). */
function blockFolder(block: Block): string {
  folder ??= mkdtempSync(join(tmpdir(), "bpfmap-readme-"));
  const path = join(folder, block.name.replace(/[^A-Za-z0-9]+/g, "_"));
  mkdirSync(path, { recursive: true });
  return path;
}

/** Runs `args` of `runtime` (node_modules/.bin) in `cwd`, with `env` over a transcript-free environment. */
function run(
  runtime: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): { status: number | null; output: string } {
  // The suite's transcript mode is for its own fixtures: a block sees the environment a user has.
  // Empty, not deleted: Deno's node:child_process adds its own environment to the one given.
  const unset = { [TRANSCRIPT_ENV]: "", [FORBID_LIVE_ENV]: "" };
  const child = spawnSync(join(ROOT, "node_modules", ".bin", runtime), args, {
    cwd,
    env: { ...process.env, ...unset, NO_COLOR: "1", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: child.status, output: `${child.stdout}${child.stderr}${child.error ?? ""}` };
}

/** A test that needs the kernel, and clang too when `clang` says so. */
function blockTest(name: string, clang: boolean, fn: () => void): void {
  if (clang && !replayRun && liveUnavailable === undefined) toolTest(name, CLANG_NEEDS, fn);
  else liveTest(name, fn);
}

const blocks = readmeBlocks();

test("README's ts blocks are all run or listed with a reason, and the lists name real blocks", () => {
  const names = blocks.map((block) => block.name);
  assert.ok(names.length >= 8, `only ${names.length} blocks found: ${names.join(", ")}`);
  for (const name of [...Object.keys(NOT_RUN), ...NEEDS_CLANG]) {
    assert.ok(names.includes(name), name);
  }
  // Each block that builds with clang is known as one, so its test says what it needs.
  for (const block of blocks) {
    assert.equal(block.code.includes("\"clang\""), NEEDS_CLANG.has(block.name), block.name);
  }
});

test("README's ts blocks type-check (deno check, strict)", () => {
  folder ??= mkdtempSync(join(tmpdir(), "bpfmap-readme-"));
  const files = blocks.map((block, i) => {
    const file = `check_${i + 1}.ts`;
    writeFileSync(join(folder!, file), pointedHere(block.code));
    return file;
  });
  const { status, output } = run("deno", ["check", ...files], folder);
  assert.equal(status, 0, output);
});

for (const block of blocks) {
  if (NOT_RUN[block.name] !== undefined) continue;
  const clang = NEEDS_CLANG.has(block.name);
  if (/^\/\/ \w+\.test\.ts\n/.test(block.code)) {
    blockTest(
      `README "${block.name}" (a test file) records live, then replays with no FFI`,
      clang,
      () => {
        const cwd = blockFolder(block);
        const file = block.code.slice(3, block.code.indexOf("\n"));
        writeFileSync(join(cwd, file), pointedHere(block.code));
        const live = run("deno", ["test", "--no-check", "--allow-all", file], cwd);
        assert.equal(live.status, 0, live.output);
        assert.match(live.output, /\b1 passed\b/, live.output);
        assert.ok(existsSync(join(cwd, "fixtures", "bump_counts_each_key.json")), live.output);
        const replayed = run(
          "deno",
          ["test", "--no-check", "--allow-read", "--allow-env", file],
          cwd,
          {
            BPFMAP_TRANSCRIPT: "replay",
          },
        );
        assert.equal(replayed.status, 0, replayed.output);
        assert.match(replayed.output, /\b1 passed\b/, replayed.output);
        const bun = run("bun", ["test", `./${file}`], cwd, {
          BPFMAP_TRANSCRIPT: "replay",
          BPFMAP_FORBID_LIVE: "1",
        });
        assert.equal(bun.status, 0, bun.output);
        assert.match(bun.output, /\b1 pass\b/, bun.output);
      },
    );
    continue;
  }
  for (const runtime of RUNTIMES) {
    blockTest(`README "${block.name}" runs in ${runtime}`, clang, () => {
      const cwd = blockFolder(block);
      const file = `${runtime}.ts`;
      writeFileSync(join(cwd, file), pointedHere(block.code));
      const args = runtime === "deno" ? ["run", "--allow-all", file] : [file];
      const { status, output } = run(runtime, args, cwd);
      assert.equal(status, 0, output);
    });
  }
}
