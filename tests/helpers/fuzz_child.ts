// Runs one fuzz sequence recording a transcript, for the cross-runtime check:
// the same seed must give byte-identical transcripts in Deno and in Bun.
// Arguments: target name, seed, ops, transcript path.

import process from "node:process";
import { openSystem } from "../../mod.ts";
import { drawOps, runOps, strideOf, TARGETS } from "./fuzzer.ts";

const [name, seed, count, path] = process.argv.slice(-4);
const target = TARGETS.find((t) => t.name === name)!;
const system = await openSystem({ transcript: path, mode: "record", modeFromEnvironment: false });
const ops = drawOps(target, strideOf(target, system.possibleCpus()), Number(seed), Number(count));
const failure = runOps(target, ops, (spec) => system.createMap(spec));
await system.close();
console.log(failure === undefined ? "ok" : `diverged at ${failure.index}`);
