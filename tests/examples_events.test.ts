// The event examples (issue 15, item 6) run as their users run them, `deno run` and `bun`, with
// events the test makes itself: execsnoop prints the `true` and `/bin/echo` processes the test
// starts (its own children, picked out by --ppid); a run recorded with --transcript and stopped
// by --count replays, with no FFI and no BPF, into the same rows.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after } from "node:test";
import {
  buildExample,
  ExampleRun,
  exampleTest,
  runExample,
  RUNTIMES,
} from "./helpers/example_run.ts";

let folder: string | undefined;
after(() => folder && rmSync(folder, { recursive: true, force: true }));
/** A folder of this run's own, for objects and transcripts. */
function scratch(): string {
  return folder ??= mkdtempSync(join(tmpdir(), "bpfmap-examples-events-"));
}
let execsnoop: string | undefined;
/** examples/bpf/execsnoop.bpf.c built by clang, once per run. */
const execsnoopObject = () => execsnoop ??= buildExample("execsnoop", scratch());

/** The table rows execsnoop printed: pid, ppid, comm, filename. */
function execRows(stdout: string): string[][] {
  return stdout.split("\n").filter((line) => /^\d+\s+\d+\s/.test(line)).map((line) =>
    line.trim().split(/\s+/)
  );
}

/** Starts `true` and `/bin/echo` as this process's children; their pids. */
function startChildren(): number[] {
  return [spawnSync("true"), spawnSync("/bin/echo", ["bpfmap"])].map((child) => {
    assert.equal(child.status, 0);
    return child.pid!;
  });
}

/** The rows the children must have: their pids, this process as parent, their names and files. */
function assertChildRows(rows: string[][], pids: number[]): void {
  const [truePid, echoPid] = pids;
  const row = (pid: number | undefined) => rows.find(([p]) => p === String(pid));
  assert.deepEqual(row(truePid)?.slice(0, 3), [String(truePid), String(process.pid), "true"]);
  assert.match(row(truePid)![3]!, /\/true$/);
  assert.deepEqual(row(echoPid), [String(echoPid), String(process.pid), "echo", "/bin/echo"]);
}

for (const runtime of RUNTIMES) {
  exampleTest(`execsnoop (${runtime}) prints the programs the test starts`, async () => {
    const run = new ExampleRun(runtime, "execsnoop.ts", [
      execsnoopObject(),
      "--duration",
      "1",
      "--ppid",
      String(process.pid),
    ], {});
    await run.waitFor("Ctrl-C to stop");
    const pids = startChildren();
    const { status, stdout, stderr } = await run.ended();
    assert.equal(status, 0, stderr);
    assert.match(stdout, /^PID {5}PPID {4}COMM {13}FILENAME$/m);
    const rows = execRows(stdout);
    assert.equal(rows.length, 2, stdout); // the test's two children, and no other process
    assertChildRows(rows, pids);
    assert.match(stdout, /\ndetached\n$/);
  });

  exampleTest(
    `execsnoop (${runtime}) recorded with --count replays into the same rows with no BPF`,
    async () => {
      const transcript = join(scratch(), `execsnoop-${runtime}.json`);
      const args = [
        execsnoopObject(),
        "--count",
        "2",
        "--ppid",
        String(process.pid),
        "--transcript",
        transcript,
      ];
      const recording = new ExampleRun(runtime, "execsnoop.ts", args, { write: true });
      await recording.waitFor("Ctrl-C to stop");
      const pids = startChildren();
      const recorded = await recording.ended();
      assert.equal(recorded.status, 0, recorded.stderr);
      assertChildRows(execRows(recorded.stdout), pids);
      const replayed = await runExample(runtime, "execsnoop.ts", args, { ffi: false });
      assert.equal(replayed.status, 0, replayed.stderr);
      assert.deepEqual(execRows(replayed.stdout), execRows(recorded.stdout));
    },
  );
}
