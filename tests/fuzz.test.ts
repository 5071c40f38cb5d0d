// Model-based differential fuzzing: for each of hash, percpu_hash, lru_hash,
// array, percpu_array, lpm_trie, queue and stack, a seeded random sequence of
// every element and batch operation (random batch sizes and cursors) runs on
// the real map and on tests/helpers/model.ts, compared after every step,
// errnos included. A failure prints the seed and a shrunk sequence.
// BPFMAP_FUZZ_OPS (default 10,000 per type) and BPFMAP_FUZZ_SEED set the run;
// `npm run fuzz` runs more. Also: the same seed records byte-identical
// transcripts under Deno and under Bun.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { detectRuntime, readEnv } from "../ffi/live.ts";
import { BpfMap, possibleCpus } from "../mod.ts";
import { drawOps, runOps, shrink, strideOf, TARGETS } from "./helpers/fuzzer.ts";
import { liveTest } from "./helpers/live.ts";

const OPS = Number(readEnv("BPFMAP_FUZZ_OPS") ?? 10_000);
const SEED = Number(readEnv("BPFMAP_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 32));
const create = (spec: Parameters<typeof BpfMap.create>[0]) => BpfMap.create(spec);

for (const target of TARGETS) {
  liveTest(`fuzz ${target.name}: ${OPS} operations agree with the model (seed ${SEED})`, () => {
    const ops = drawOps(target, strideOf(target, possibleCpus()), SEED, OPS);
    const failure = runOps(target, ops, create);
    if (failure !== undefined) {
      const small = shrink(target, ops, failure, create);
      const last = runOps(target, small, create)!;
      assert.fail(
        `${target.name} differs from the model at operation ${failure.index} of seed ${SEED} `
          + `(rerun: BPFMAP_FUZZ_SEED=${SEED}). Shrunk to ${small.length} operation(s):\n`
          + small.map((op, i) => `  ${i}: ${JSON.stringify(op)}`).join("\n")
          + `\nthe last one: expected ${JSON.stringify(last?.expected)}, got ${
            JSON.stringify(last?.actual)
          }`,
      );
    }
    console.log(`fuzz ${target.name}: ${OPS} operations, seed ${SEED}, no difference`);
  });
}

liveTest("the same fuzz seed records byte-identical transcripts in Deno and in Bun", () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-fuzz-"));
  try {
    const child = fileURLToPath(new URL("./helpers/fuzz_child.ts", import.meta.url));
    const bin = fileURLToPath(new URL("../node_modules/.bin/", import.meta.url));
    const runs = {
      deno: [
        `${bin}deno`,
        "run",
        "--allow-ffi",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        child,
      ],
      bun: [`${bin}bun`, child],
    };
    const files: string[] = [];
    for (const [runtime, command] of Object.entries(runs)) {
      for (const name of ["hash", "percpu_array", "lpm_trie", "stack"]) {
        const path = join(dir, `${runtime}-${name}.json`);
        const env: Record<string, string | undefined> = { ...process.env };
        delete env.BPFMAP_TRANSCRIPT;
        const [program = assert.fail("no command"), ...rest] = command;
        const run = spawnSync(program, [...rest, name, String(SEED), "1000", path], {
          encoding: "utf8",
          env,
        });
        assert.equal(run.status, 0, `${runtime} ${name}: ${run.stderr}`);
        assert.equal(run.stdout.trim(), "ok", `${runtime} ${name}`);
        files.push(path);
      }
    }
    assert.equal(files.length, 8);
    for (const [i, file] of files.slice(0, 4).entries()) {
      const other = files[i + 4] ?? assert.fail(`no run after ${file}`);
      assert.equal(readFileSync(file, "utf8"), readFileSync(other, "utf8"), other);
    }
    console.log(
      `cross-runtime: 4 map types x 1,000 operations, Deno and Bun transcripts identical (seed ${SEED}, ${detectRuntime()})`,
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});
