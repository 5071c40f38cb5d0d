// The examples (issue 14, item 7) run as their users run them, `deno run` and `bun`, each with
// something to count that the test makes itself: syscount sees the `true` processes the test
// starts, xdp_protocols the datagrams it sends over loopback and the ICMP errors they draw, and
// test_run passes its checks live, then from its recorded transcript with no BPF (replay passes).

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { readEnv } from "../ffi/live.ts";
import { TRANSCRIPT_ENV } from "../mod.ts";
import {
  buildExample,
  ExampleRun,
  exampleTest,
  runExample,
  RUNTIMES,
} from "./helpers/example_run.ts";
import { replayRun } from "./helpers/live.ts";
import { lockMachine } from "./helpers/machine_lock.ts";
import { CLANG_NEEDS } from "./helpers/object_build.ts";
import { toolTest } from "./helpers/tools.ts";
import { FIXTURES } from "./helpers/transcript.ts";

let folder: string | undefined;
after(() => folder && rmSync(folder, { recursive: true, force: true }));
const built = new Map<string, string>();
/** `examples/bpf/<name>.bpf.c` built by clang, once per run. */
function object(name: string): string {
  let path = built.get(name);
  if (path === undefined) {
    folder ??= mkdtempSync(join(tmpdir(), "bpfmap-examples-"));
    built.set(name, path = buildExample(name, folder));
  }
  return path;
}

/** The rows of every table an example printed: its columns split on spaces. */
function rows(stdout: string, first: RegExp): string[][] {
  return stdout.split("\n").filter((line) => first.test(line)).map((line) =>
    line.trim().split(/\s+/)
  );
}

for (const runtime of RUNTIMES) {
  exampleTest(
    `syscount (${runtime}) counts the system calls of processes the test starts`,
    async () => {
      const run = new ExampleRun(runtime, "syscount.ts", [
        object("syscount"),
        "--interval",
        "0.2",
        "--top",
        "1000000",
      ], {});
      await run.waitFor("Ctrl-C to stop");
      const pids = [1, 2, 3].map(() => {
        const child = spawnSync("true");
        assert.equal(child.status, 0);
        return child.pid!;
      });
      run.interrupt(); // the last report drains what the map still holds: every call made so far
      const { status, stdout, stderr } = await run.ended();
      assert.equal(status, 0, stderr);
      assert.match(stdout, /\n\s+PID COMM\s+SYSCALLS  TOP SYSCALL\n/);
      assert.ok(stdout.endsWith("\ndetached\n"), stdout);
      // A process may be in several reports (each drains what came since the last one).
      const table = rows(stdout, /^\s*\d+ /);
      for (const pid of pids) {
        const mine = table.filter(([tgid]) => tgid === String(pid));
        assert.ok(mine.some(([, comm]) => comm === "true"), `pid ${pid} as 'true' in:\n${stdout}`);
        assert.ok(mine.reduce((sum, [, , count]) => sum + Number(count), 0) > 0);
      }
    },
  );

  exampleTest(`syscount (${runtime}) ends by itself after --duration`, async () => {
    const { status, stdout, stderr } = await runExample(runtime, "syscount.ts", [
      object("syscount"),
      "--duration",
      "0.3",
    ]);
    assert.equal(status, 0, stderr);
    assert.match(stdout, /^attached count_syscalls to sys_enter \(link id \d+\); Ctrl-C to stop\n/);
    assert.match(stdout, /\n\d\d:\d\d:\d\d  \d+ syscalls by \d+ processes\n/);
    assert.ok(stdout.endsWith("\ndetached\n"), stdout);
  });

  test(`the examples (${runtime}) refuse bad usage before loading anything`, async () => {
    for (
      const [script, args, code, message] of [
        ["syscount.ts", [], 2, "usage: syscount.ts OBJECT"],
        ["syscount.ts", ["x.o", "--interval", "0"], 2, "usage: syscount.ts OBJECT"],
        ["xdp_protocols.ts", ["x.o", "--duration", "-1"], 2, "usage: xdp_protocols.ts OBJECT"],
        [
          "xdp_protocols.ts",
          ["x.o", "--interface", "nosuchdevice0"],
          1,
          "cannot find network device 'nosuchdevice0'",
        ],
        ["test_run.ts", [], 2, "usage: test_run.ts OBJECT"],
      ] as const
    ) {
      const result = await runExample(runtime, script, args, { ffi: false });
      assert.equal(result.status, code, `${script} ${args.join(" ")}: ${result.stderr}`);
      assert.ok(result.stderr.startsWith(message), result.stderr);
      assert.equal(result.stdout, "");
    }
  });
}

/**
 * Sends `count` datagrams over IPv4 and over IPv6 loopback, each to a port nothing listens on,
 * and returns once each has drawn its ICMP "port unreachable" (the socket's ECONNREFUSED): by then
 * XDP on loopback has seen each datagram and each ICMP error. A node child: Deno needs no
 * --allow-net.
 */
function sendRefused(count: number): void {
  const script = `
    const dgram = require("node:dgram");
    const count = Number(process.argv[1]);
    async function refused(type, host) {
      // A port that was free a moment ago: nothing listens there.
      const probe = dgram.createSocket(type);
      await new Promise((resolve) => probe.bind(0, host, resolve));
      const port = probe.address().port;
      probe.close();
      const socket = dgram.createSocket(type);
      await new Promise((resolve) => socket.connect(port, host, resolve));
      await new Promise((resolve, reject) => {
        socket.once("error", (error) => error.code === "ECONNREFUSED" ? resolve() : reject(error));
        socket.send("bpfmap example");
      });
      socket.close();
    }
    (async () => {
      for (let i = 0; i < count; i++) {
        await refused("udp4", "127.0.0.1");
        await refused("udp6", "::1");
      }
    })();`;
  execFileSync("node", ["-e", script, String(count)], { stdio: "inherit" });
}

/** Whether loopback has an XDP program, as `ip link` shows it. */
const loopbackXdp = () =>
  /\bxdp/.test(execFileSync("ip", ["link", "show", "lo"], { encoding: "utf8" }));

for (const runtime of RUNTIMES) {
  exampleTest(
    `xdp_protocols (${runtime}) counts UDP and ICMP on loopback, and detaches on Ctrl-C`,
    async () => {
      const path = object("xdp_protocols");
      // Loopback takes one XDP program: another run on this machine waits its turn.
      const unlock = lockMachine("xdp-lo");
      try {
        const run = new ExampleRun(runtime, "xdp_protocols.ts", [path, "--interval", "0.2"], {});
        await run.waitFor("Ctrl-C to stop");
        assert.ok(loopbackXdp());
        sendRefused(3);
        run.interrupt(); // the last report comes after every packet sent
        const { status, stdout, stderr } = await run.ended();
        assert.equal(status, 0, stderr);
        assert.ok(stdout.endsWith("\ndetached from lo\n"), stdout);
        assert.ok(!loopbackXdp(), "the program left loopback with the example");
        const last = stdout.slice(stdout.lastIndexOf("\n\n") + 2).split("\n");
        assert.match(last[0]!, /^\d\d:\d\d:\d\d  lo: \d+ packets$/);
        assert.deepEqual(last[1]!.split(/\s+/), ["PROTOCOL", "IPv4", "IPv6"]);
        const counts = new Map(
          rows(last.join("\n"), /^(TCP|UDP|ICMP|other) /).map((
            [p, v4, v6],
          ) => [p, [Number(v4), Number(v6)]]),
        );
        assert.deepEqual([...counts.keys()], ["TCP", "UDP", "ICMP", "other"]);
        // At least: other tests may send over loopback meanwhile.
        for (const protocol of ["UDP", "ICMP"]) {
          const [v4, v6] = counts.get(protocol)!;
          assert.ok(v4! >= 3 && v6! >= 3, `${protocol}: ${v4} IPv4, ${v6} IPv6 in:\n${stdout}`);
        }
      } finally {
        unlock();
      }
    },
  );
}

const OBJECT_FIXTURE = join(FIXTURES, "examples.test.ts", "test_run.bpf.o");
const TRANSCRIPT_FIXTURE = join(FIXTURES, "examples.test.ts", "test_run.json");
const mode = readEnv(TRANSCRIPT_ENV);
/** Whether test_run's fixtures are read as they are (a replay; or auto mode, once recorded). */
const fromFixtures = replayRun || (mode === undefined && existsSync(OBJECT_FIXTURE));

/**
 * test_run's object: the fixture where its transcript is replayed (no clang needed), else
 * clang's build, written as the fixture when recording and checked against it when verifying
 * (the transcript holds its instructions).
 */
function testRunObject(): string {
  if (fromFixtures) return OBJECT_FIXTURE;
  const path = object("test_run");
  if (mode === "verify") {
    assert.deepEqual(readFileSync(path), readFileSync(OBJECT_FIXTURE), "clang's build differs");
  } else {
    writeFileSync(OBJECT_FIXTURE, readFileSync(path));
  }
  return path;
}

/** What test_run prints after its mode: the same live and replayed. */
const TEST_RUN_OUTPUT = `PACKET             BYTES  VERDICT      CHANGED
ICMP echo request     53  XDP_TX       6 bytes
UDP to port 9         52  XDP_DROP     0 bytes
UDP to port 53        49  XDP_PASS     0 bytes
IPv4 cut short        24  XDP_ABORTED  0 bytes
ARP                   42  XDP_PASS     0 bytes
verdicts counted: XDP_ABORTED 1, XDP_DROP 1, XDP_PASS 2, XDP_TX 1, XDP_REDIRECT 0
all 5 packets gave the verdict and the bytes expected
`;

/** A test of test_run on its fixtures: plain where they are replayed, else it needs clang. */
const testRunTest = (name: string, fn: () => Promise<void>) =>
  fromFixtures ? test(name, fn) : toolTest(name, CLANG_NEEDS, fn);

for (const runtime of RUNTIMES) {
  testRunTest(
    `test_run (${runtime}) passes its checks on its transcript, in this run's mode`,
    async () => {
      // The suite's mode is the example's: recorded, verified live, or replayed with no FFI.
      const expected = replayRun
        ? "replay"
        : mode ?? (existsSync(TRANSCRIPT_FIXTURE) ? "replay" : "record");
      const { status, stdout, stderr } = await runExample(
        runtime,
        "test_run.ts",
        [testRunObject(), "--transcript", TRANSCRIPT_FIXTURE],
        { ffi: !replayRun, write: mode === "record" || mode === "verify", transcriptMode: true },
      );
      assert.equal(status, 0, stderr);
      assert.equal(stdout, `mode: ${expected} (${TRANSCRIPT_FIXTURE})\n${TEST_RUN_OUTPUT}`);
    },
  );

  exampleTest(
    `test_run (${runtime}) records a transcript live, then replays it with no BPF`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "bpfmap-test-run-"));
      try {
        const transcript = join(dir, "test_run.json");
        const args = [object("test_run"), "--transcript", transcript];
        const recorded = await runExample(runtime, "test_run.ts", args, { write: true });
        assert.equal(recorded.status, 0, recorded.stderr);
        assert.equal(recorded.stdout, `mode: record (${transcript})\n${TEST_RUN_OUTPUT}`);
        const calls = readFileSync(transcript, "utf8").match(/"call":"BPF_PROG_TEST_RUN"/g);
        assert.equal(calls?.length, 5);
        const replayed = await runExample(runtime, "test_run.ts", args, { ffi: false });
        assert.equal(replayed.status, 0, replayed.stderr);
        assert.equal(replayed.stdout, `mode: replay (${transcript})\n${TEST_RUN_OUTPUT}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
