// A second opinion on attr packing: strace shows the size every bpf() call
// passed, and it must be the command table's size for each command (56 for
// the batch commands; one of its shapes' for BPF_LINK_CREATE). Also proves the calls the command table names are the
// ones the kernel saw.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { COMMANDS, COMMANDS_BY_KEY } from "../ffi/commands.ts";
import { runtimeCommand } from "./helpers/child.ts";
import { liveTest } from "./helpers/live.ts";
import { missingTools, toolTest } from "./helpers/tools.ts";

const NEEDS = { commands: ["strace"] };

/** A test that needs strace and the kernel: without strace as toolTest, else as liveTest. */
function straceTest(name: string, fn: () => void): void {
  if (missingTools(NEEDS) !== undefined) toolTest(name, NEEDS, fn);
  else liveTest(name, fn);
}

straceTest("strace sees every command with exactly its table size", () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-strace-"));
  const bpffs = join(dir, "bpffs");
  let mounted = false;
  try {
    execFileSync("mkdir", [bpffs]);
    execFileSync("mount", ["-t", "bpf", "bpf", bpffs]);
    mounted = true;
    const script = fileURLToPath(new URL("./helpers/every_command.ts", import.meta.url));
    const [command, args] = runtimeCommand(script, [bpffs]);
    const log = join(dir, "strace.log");
    const out = execFileSync("strace", ["-f", "-e", "trace=bpf", "-o", log, command, ...args], {
      encoding: "utf8",
    });
    assert.match(out, /done/);
    const seen = new Map<string, Set<number>>();
    for (const line of readFileSync(log, "utf8").split("\n")) {
      const match = /bpf\((BPF_\w+), .*, (\d+)\) += /.exec(line);
      if (match === null) continue;
      const [, command = "", size] = match; // both groups take part in every match
      if (!seen.has(command)) seen.set(command, new Set());
      seen.get(command)!.add(Number(size));
    }
    // A command with several shapes (BPF_LINK_CREATE) may pass any of their sizes, and its plain
    // one is among them; every other command passes its one size.
    const sizes = new Map<string, number[]>();
    for (const cmd of COMMANDS_BY_KEY.values()) {
      sizes.set(cmd.name, [...sizes.get(cmd.name) ?? [], cmd.size]);
    }
    for (const cmd of COMMANDS.values()) {
      const saw = [...(seen.get(cmd.name) ?? [])];
      assert.ok(saw.includes(cmd.size), `${cmd.name} as strace saw it: ${saw}, not ${cmd.size}`);
      for (const size of saw) {
        assert.ok(sizes.get(cmd.name)!.includes(size), `${cmd.name} with ${size} bytes`);
      }
    }
  } finally {
    if (mounted) execFileSync("umount", [bpffs]);
    rmSync(dir, { recursive: true });
  }
});
