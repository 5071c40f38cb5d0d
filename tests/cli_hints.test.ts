// EPERM and EACCES from the bpfmap command say their true cause, not always
// "run as root": a path outside bpffs (bpftool's words), a bpffs folder, a
// frozen map, a pin this user may not open, a missing CAP_BPF or CAP_SYS_ADMIN
// (the command run under setpriv with fewer capabilities). And Deno given only
// --allow-ffi asks for nothing on a terminal.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { detectRuntime } from "../ffi/live.ts";
import { BpfMap } from "../maps/bpf_map.ts";
import { TRANSCRIPT_ENV } from "../replay/system.ts";
import { type FreshBpffs, freshBpffs } from "./helpers/bpffs.ts";
import { liveTest, replayRun } from "./helpers/live.ts";
import { toolTest } from "./helpers/tools.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const deno = detectRuntime() === "deno";

/**
 * Runs `bpfmap ARGS` in a child of this runtime, from the repository's root, after `wrapper`
 * (`setpriv ...`) if given; returns its stderr and status.
 */
function bpfmapFails(
  args: string[],
  wrapper: string[] = [],
): { stderr: string; status: number | null } {
  const runtime = deno
    ? [process.execPath, "run", "--allow-ffi", "--allow-read", "--allow-write", "cli/main.ts"]
    : [process.execPath, "cli/main.ts"];
  const [command, ...rest] = [...wrapper, ...runtime, ...args];
  assert.ok(command !== undefined); // runtime is never empty
  const run = spawnSync(command, rest, { cwd: ROOT, encoding: "utf8", env: childEnv() });
  return { stderr: run.stderr, status: run.status };
}

/** The environment of a bpfmap child: this run's transcript mode is not the command's. */
function childEnv(): Record<string, string> {
  const env = { ...process.env } as Record<string, string>;
  delete env[TRANSCRIPT_ENV];
  return env;
}

/** A live test that also needs `command` (util-linux's setpriv, script); replay runs sit it out. */
function liveToolTest(name: string, command: string, fn: () => void): void {
  if (replayRun) liveTest(name, fn);
  else toolTest(name, { commands: [command] }, fn);
}

/** A map of its own, pinned in a bpffs of its own, for one test. */
function withPinnedMap(
  spec: { frozen?: boolean },
  fn: (bpffs: FreshBpffs, map: BpfMap, pin: string) => void,
): void {
  const bpffs = freshBpffs("bpfmap-hints-");
  try {
    using map = BpfMap.create({
      type: "array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
      name: "cli_hints",
    });
    if (spec.frozen) map.freeze();
    const pin = `${bpffs.path}/map`;
    map.pin(pin);
    fn(bpffs, map, pin);
  } finally {
    bpffs.unmount();
  }
}

const EACCES = "BPF_OBJ_GET failed: EACCES (Permission denied)";
const EPERM = "failed: EPERM (Operation not permitted)";

liveTest("a path outside bpffs says so in bpftool's words; a bpffs folder is not a map", () => {
  withPinnedMap({}, (bpffs, map) => {
    // A plain file, named relative to the working folder.
    assert.deepEqual(bpfmapFails(["map", "dump", "pinned", "README.md"]), {
      stderr: `Error: ${EACCES}: README.md: directory not in bpf file system (bpffs)\n`,
      status: 1,
    });
    assert.deepEqual(bpfmapFails(["map", "show", "pinned", bpffs.path]), {
      stderr:
        `Error: ${EACCES}: ${bpffs.path}: not a pinned object (a folder of the bpf file system?)\n`,
      status: 1,
    });
    const dir = mkdtempSync(join(tmpdir(), "bpfmap-hints-"));
    try {
      const created = bpfmapFails(
        ["map", "create", `${dir}/m`, "type", "hash", "key", "4", "value", "4", "entries", "4"]
          .concat(["name", "cli_hints_new"]),
      );
      assert.equal(created.status, 1);
      assert.match(
        created.stderr,
        new RegExp(
          `^Error: BPF_OBJ_PIN ${EPERM.replace(/[()]/g, "\\$&")}: hash map "cli_hints_new" `
            + `\\(id \\d+\\) at ${dir}/m: directory not in bpf file system \\(bpffs\\)\\n$`,
        ),
      );
      assert.deepEqual(bpfmapFails(["map", "pin", "id", String(map.id), `${dir}/p`]), {
        stderr: `Error: BPF_OBJ_PIN ${EPERM}: array map "cli_hints" (id ${map.id}) at ${dir}/p: `
          + "directory not in bpf file system (bpffs)\n",
        status: 1,
      });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

liveTest("an update or a delete of a frozen map says the map is frozen", () => {
  withPinnedMap({ frozen: true }, (_bpffs, map, pin) => {
    const frozen = "the map is frozen: user space may not change it any more";
    const named = `array map "cli_hints" (id ${map.id})`;
    for (const ref of [["pinned", pin], ["id", String(map.id)]]) {
      assert.deepEqual(
        bpfmapFails([
          "map",
          "update",
          ...ref,
          "key",
          "0",
          "0",
          "0",
          "0",
          "value",
          "1",
          "0",
          "0",
          "0",
        ]),
        { stderr: `Error: BPF_MAP_UPDATE_ELEM ${EPERM}: ${named}: ${frozen}\n`, status: 1 },
      );
    }
  });
});

liveToolTest(
  "without CAP_BPF, without CAP_SYS_ADMIN, or barred by a pin's mode: each says so",
  "setpriv",
  () => {
    withPinnedMap({}, (_bpffs, _map, pin) => {
      // Root with an empty bounding set runs with no capability at all; with +bpf, CAP_BPF only.
      const noCaps = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"];
      const bpfOnly = ["setpriv", "--inh-caps=-all", "--bounding-set=-all,+bpf"];
      const list = ["map", "list"];
      const listing = `Error: BPF_MAP_GET_NEXT_ID ${EPERM}: after id 0: `;
      assert.deepEqual(bpfmapFails(list, noCaps), {
        stderr: `${listing}run as root or with CAP_BPF `
          + "(and CAP_SYS_ADMIN to list maps or open them by id)\n",
        status: 1,
      });
      assert.deepEqual(bpfmapFails(list, bpfOnly), {
        stderr: `${listing}listing maps and opening them by id need CAP_SYS_ADMIN `
          + "(CAP_BPF does for the rest)\n",
        status: 1,
      });
      // A pin (mode 0600) another user owns: only CAP_DAC_OVERRIDE would open it.
      chownSync(pin, 65534, 65534);
      assert.deepEqual(bpfmapFails(["map", "show", "pinned", pin], bpfOnly), {
        stderr: `Error: ${EACCES}: ${pin}: the file's owner and mode do not let this user open it `
          + "(run as its owner or root)\n",
        status: 1,
      });
    });
  },
);

if (deno) {
  // Deno prompts for a permission it was not given when stdin and stderr are a terminal: the
  // prompt then waits for ever. script(1) gives the command one.
  liveToolTest(
    "deno run --allow-ffi cli/main.ts map list asks for nothing on a terminal",
    "script",
    () => {
      const command = `${process.execPath} run --allow-ffi cli/main.ts map list`;
      const run = spawnSync("script", ["-qec", command, "/dev/null"], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 20_000,
        env: childEnv(),
      });
      assert.doesNotMatch(run.stdout, /Deno requests/);
      assert.equal(run.status, 0, run.stdout);
    },
  );
}
