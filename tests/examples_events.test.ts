// The event examples (issue 15, item 6) run as their users run them, `deno run` and `bun`, with
// events the test makes itself: execsnoop prints the `true` and `/bin/echo` processes the test
// starts (its own children, picked out by --ppid); a run recorded with --transcript and stopped
// by --count replays, with no FFI and no BPF, into the same rows.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
    // Stopped by Ctrl-C once both rows are out (the duration only bounds a failing run): a
    // second-long run on a busy machine could end before the children exec.
    const run = new ExampleRun(runtime, "execsnoop.ts", [
      execsnoopObject(),
      "--duration",
      "60",
      "--ppid",
      String(process.pid),
    ], {});
    await run.waitFor("Ctrl-C to stop");
    const pids = startChildren();
    for (const pid of pids) await run.waitFor(`\n${pid} `);
    run.interrupt();
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

// opensnoop: a shell the test starts opens a file the test names, once, seen through the perf
// buffer as one row (its pid, "sh", the path), live and replayed from a recording.

let opensnoop: string | undefined;
/** examples/bpf/opensnoop.bpf.c built by clang, once per run. */
const opensnoopObject = () => opensnoop ??= buildExample("opensnoop", scratch());

/**
 * A shell waiting for a line on its stdin, then opening `path` (its redirection: one openat, with
 * no exec in between) and ending: the process opensnoop is told to watch, made before it starts.
 */
function opener(path: string): { pid: number; open(): void; ended: Promise<number | null> } {
  writeFileSync(path, "opened by the test\n");
  const child = spawn("sh", ["-c", `read line; read text < '${path}'`], {
    stdio: ["pipe", "ignore", "inherit"],
  });
  const ended = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  return { pid: child.pid!, open: () => child.stdin!.end("go\n"), ended };
}

/** The table rows opensnoop printed: pid, comm, path. */
function openRows(stdout: string): string[][] {
  return stdout.split("\n").filter((line) => /^\d+\s/.test(line)).map((line) =>
    line.trim().split(/\s+/)
  );
}

for (const runtime of RUNTIMES) {
  exampleTest(`opensnoop (${runtime}) prints the file the test's process opens`, async () => {
    const path = join(scratch(), `opened-${runtime}`);
    const shell = opener(path);
    // Ended by its one row, not by the clock: a second could run out, on a loaded machine,
    // before the shell's open reached it. The duration only bounds a run that sees nothing.
    const run = new ExampleRun(runtime, "opensnoop.ts", [
      opensnoopObject(),
      "--count",
      "1",
      "--duration",
      "60",
      "--pid",
      String(shell.pid),
    ], {});
    await run.waitFor("Ctrl-C to stop");
    shell.open();
    assert.equal(await shell.ended, 0);
    const { status, stdout, stderr } = await run.ended();
    assert.equal(status, 0, stderr);
    assert.match(stdout, /^PID {5}COMM {13}PATH$/m);
    assert.deepEqual(openRows(stdout), [[String(shell.pid), "sh", path]]);
    assert.match(stdout, /\ndetached\n$/);
  });

  exampleTest(
    `opensnoop (${runtime}) recorded with --count replays into the same rows with no BPF`,
    async () => {
      const path = join(scratch(), `opened-recorded-${runtime}`);
      const transcript = join(scratch(), `opensnoop-${runtime}.json`);
      const shell = opener(path);
      const args = [
        opensnoopObject(),
        "--count",
        "1",
        "--pid",
        String(shell.pid),
        "--transcript",
        transcript,
      ];
      const recording = new ExampleRun(runtime, "opensnoop.ts", args, { write: true });
      await recording.waitFor("Ctrl-C to stop");
      shell.open();
      assert.equal(await shell.ended, 0);
      const recorded = await recording.ended();
      assert.equal(recorded.status, 0, recorded.stderr);
      assert.deepEqual(openRows(recorded.stdout), [[String(shell.pid), "sh", path]]);
      const replayed = await runExample(runtime, "opensnoop.ts", args, { ffi: false });
      assert.equal(replayed.status, 0, replayed.stderr);
      assert.deepEqual(openRows(replayed.stdout), openRows(recorded.stdout));
    },
  );
}
