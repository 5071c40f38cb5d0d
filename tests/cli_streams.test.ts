// The bpfmap command as a stream that can close: a reader that goes away
// (`| head`), a full disk (/dev/full), an error in the middle of a -j dump
// (the document still parses), -j --version, and --record refusing a target
// it could not write before the command runs. Each run is a child process of
// this runtime, Deno or Bun.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { readEnv } from "../ffi/live.ts";
import { BpfMap } from "../maps/bpf_map.ts";
import { TRANSCRIPT_ENV } from "../replay/system.ts";
import { serializeTranscript } from "../replay/transcript.ts";
import { freshBpffs, REPLAY_BPFFS } from "./helpers/bpffs.ts";
import { bpfmap, bpfmapCommand, childEnv } from "./helpers/cli_run.ts";
import { liveTest, replayRun } from "./helpers/live.ts";
import { FIXTURES, withoutKernelRelease } from "./helpers/transcript.ts";

const mode = readEnv(TRANSCRIPT_ENV);

/** A hash map of `count` elements, 4-byte keys and 8-byte values: its dump is ~50 bytes each. */
function bigMap(count: number): BpfMap {
  const map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: count });
  const keys = new Uint8Array(Uint32Array.from({ length: count }, (_, i) => i).buffer);
  map.updateBatch(keys, new Uint8Array(count * 8).fill(0xab));
  return map;
}

describe("bpfmap as a stream", () => {
  liveTest("a dump piped into head -c 10 ends quietly with 0: the reader went away", () => {
    // 60,000 elements print ~3 MiB plain and ~5 MiB -j: far more than a pipe holds, so the
    // command is still writing when head has gone.
    using map = bigMap(60_000);
    for (const json of [[], ["-j"]]) {
      const args = [...json, "map", "dump", "id", String(map.id)];
      const whole = bpfmap(args);
      assert.equal(whole.status, 0, whole.stderr);
      // pipefail: the status is bpfmap's, not head's.
      const piped = spawnSync(
        "bash",
        ["-c", "set -o pipefail; \"$@\" | head -c 10", "bash", ...bpfmapCommand(), ...args],
        { encoding: "utf8", env: childEnv() },
      );
      assert.deepEqual(
        { stdout: piped.stdout, stderr: piped.stderr, status: piped.status },
        { stdout: whole.stdout.slice(0, 10), stderr: "", status: 0 },
        args.join(" "),
      );
    }
  });

  liveTest("output to a full disk (/dev/full) is reported once, on stderr, with 1", () => {
    using map = bigMap(60_000);
    // A dump fails mid-way (at its first 1 MiB); a show fails at the last flush. The shell opens
    // /dev/full: Deno would want --allow-all for it.
    for (
      const args of [
        ["map", "dump", "id", String(map.id)],
        ["-j", "map", "dump", "id", String(map.id)],
        ["map", "show", "id", String(map.id)],
        ["-j", "map", "show", "id", String(map.id)],
        ["-j", "--version"],
      ]
    ) {
      const run = spawnSync("bash", [
        "-c",
        "\"$@\" >/dev/full",
        "bash",
        ...bpfmapCommand(),
        ...args,
      ], {
        encoding: "utf8",
        env: childEnv(),
      });
      assert.deepEqual(
        { stderr: run.stderr, status: run.status },
        {
          stderr: "Error: write to standard output: No space left on device (ENOSPC)\n",
          status: 1,
        },
        args.join(" "),
      );
    }
  });

  test("-j --version is an object, as bpftool -j version", () => {
    const version = JSON.parse(
      readFileSync(fileURLToPath(new URL("../package.json", import.meta.url)), "utf8"),
    ).version;
    assert.deepEqual(bpfmap(["-j", "--version"], { ffi: false }), {
      stdout: `{"version":"${version}"}\n`,
      stderr: "",
      status: 0,
    });
    assert.equal(
      bpfmap(["-p", "--version"], { ffi: false }).stdout,
      `{\n    "version": "${version}"\n}\n`,
    );
    assert.equal(bpfmap(["--version"], { ffi: false }).stdout, `bpfmap ${version}\n`);
  });

  // An error after the first batch of a dump: a live recording of a 4-element array dumped two
  // by two, whose second lookup batch is made to fail with EFAULT. Recorded in record mode,
  // compared in verify mode, replayed in every pass.
  const faulty = join(FIXTURES, "cli_streams.test.ts", "dump_fails_after_first_batch.json");
  const dumpArgs = (transcript: string) => [
    "--batch",
    "2",
    "--path",
    `BPFFS=${REPLAY_BPFFS}`,
    "--replay",
    transcript,
    "map",
    "dump",
    "pinned",
    `${REPLAY_BPFFS}/arr`,
  ];
  const checkFaultyDump = (transcript: string) => {
    const error = "BPF_MAP_LOOKUP_BATCH failed: EFAULT (Bad address): 0 element(s) processed; "
      + "array map \"cli_streams_arr\" (id 1)";
    const compact = bpfmap(["-j", ...dumpArgs(transcript)], { ffi: false });
    assert.deepEqual(compact, {
      stdout: "[{\"key\":[\"0x00\",\"0x00\",\"0x00\",\"0x00\"],\"value\":[\"0x00\",\"0xaa\"]},"
        + "{\"key\":[\"0x01\",\"0x00\",\"0x00\",\"0x00\"],\"value\":[\"0x01\",\"0xaa\"]},"
        + `{"error":${JSON.stringify(error)}}]\n`,
      stderr: "",
      status: 1,
    });
    const pretty = bpfmap(["-p", ...dumpArgs(transcript)], { ffi: false });
    assert.equal(pretty.status, 1);
    assert.deepEqual(JSON.parse(pretty.stdout), JSON.parse(compact.stdout));
    assert.match(
      pretty.stdout,
      /\n {4}\},\{\n {8}"error": "BPF_MAP_LOOKUP_BATCH failed: [^\n]+\n {4}\}\n\]\n$/,
    );
    // Plain text: the elements printed, then the error on stderr and no "Found" line.
    assert.deepEqual(bpfmap(dumpArgs(transcript), { ffi: false }), {
      stdout: "key: 00 00 00 00  value: 00 aa\nkey: 01 00 00 00  value: 01 aa\n",
      stderr: `Error: ${error}\n`,
      status: 1,
    });
  };
  if (replayRun || (mode === undefined && existsSync(faulty))) {
    test("an error mid-dump closes the -j document with the error as bpftool's p_err does", () => {
      checkFaultyDump(faulty);
    });
  } else {
    liveTest(
      "an error mid-dump closes the -j document with the error as bpftool's p_err does",
      () => {
        const transcript = recordFaultyDump();
        if (mode === "verify") {
          assert.equal(
            withoutKernelRelease(transcript),
            withoutKernelRelease(readFileSync(faulty, "utf8")),
            "the transcript changed",
          );
        } else {
          mkdirSync(dirname(faulty), { recursive: true });
          writeFileSync(faulty, transcript);
        }
        checkFaultyDump(faulty);
      },
    );
  }

  liveTest(
    "--record checks its target before the command runs: nothing applied, nothing left",
    () => {
      using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 1, maxEntries: 2 });
      const dir = mkdtempSync(join(tmpdir(), "bpfmap-record-"));
      const readOnly = join(dir, "ro");
      mkdirSync(readOnly);
      mkdirSync(join(dir, "folder"));
      spawnSync("mount", ["-t", "tmpfs", "-o", "ro", "tmpfs", readOnly], { stdio: "inherit" });
      try {
        const update = [
          "map",
          "update",
          "id",
          String(map.id),
          "key",
          "1",
          "0",
          "0",
          "0",
          "value",
          "7",
        ];
        const cases: [string, string][] = [
          [
            join(dir, "absent", "t.json"),
            `no folder ${join(dir, "absent")}: No such file or directory (ENOENT)`,
          ],
          [join(dir, "folder"), "is a folder, not a file"],
          [join(readOnly, "t.json"), `can't write in ${readOnly}: Read-only file system (EROFS)`],
        ];
        for (const [target, why] of cases) {
          for (const json of [false, true]) {
            const run = bpfmap([...(json ? ["-j"] : []), "--record", target, ...update]);
            const message = `--record ${target}: ${why}`;
            assert.deepEqual(
              run,
              json
                ? { stdout: `{"error":${JSON.stringify(message)}}\n`, stderr: "", status: 1 }
                : { stdout: "", stderr: `Error: ${message}\n`, status: 1 },
            );
          }
        }
        assert.deepEqual(map.lookup(new Uint8Array([1, 0, 0, 0])), new Uint8Array([0]), "updated");
        assert.deepEqual(readdirSync(dir).sort(), ["folder", "ro"]);
        assert.deepEqual(readdirSync(join(dir, "folder")), []);
        // A target that can be written: the transcript and nothing else.
        const run = bpfmap(["--record", join(dir, "t.json"), ...update]);
        assert.equal(run.status, 0, run.stderr);
        assert.deepEqual(readdirSync(dir).sort(), ["folder", "ro", "t.json"]);
        assert.deepEqual(map.lookup(new Uint8Array([1, 0, 0, 0])), new Uint8Array([7]));
      } finally {
        spawnSync("umount", [readOnly]);
        rmSync(dir, { recursive: true });
      }
    },
  );
});

/** Records `-j --batch 2 map dump` of a 4-element array, then fails its second lookup batch. */
function recordFaultyDump(): string {
  const bpffs = freshBpffs("bpfmap-streams-");
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-streams-"));
  try {
    {
      using map = BpfMap.create({
        type: "array",
        keySize: 4,
        valueSize: 2,
        maxEntries: 4,
        name: "cli_streams_arr",
      });
      for (let i = 0; i < 4; i++) {
        map.update(new Uint8Array([i, 0, 0, 0]), new Uint8Array([i, 0xaa]));
      }
      map.pin(`${bpffs.path}/arr`);
    }
    const transcript = join(dir, "t.json");
    const args = ["-j", "--batch", "2", "--path", `BPFFS=${bpffs.path}`, "--record", transcript];
    const run = bpfmap([...args, "map", "dump", "pinned", `${bpffs.path}/arr`]);
    assert.equal(run.status, 0, run.stderr);
    const recorded = JSON.parse(readFileSync(transcript, "utf8"));
    const batches = recorded.entries.filter((entry: { call?: string }) =>
      entry.call === "BPF_MAP_LOOKUP_BATCH"
    );
    assert.equal(batches.length, 3, "two batches of two, then ENOENT");
    // The second batch fails having copied nothing; the dump then closes the map.
    const second = batches[1];
    second.attr.keys.out = "";
    second.attr.values.out = "";
    second.attr.count.out = 0;
    second.attr.out_batch.out = second.attr.in_batch.in;
    delete second.result;
    second.errno = "EFAULT";
    const at = recorded.entries.indexOf(second);
    recorded.entries.splice(at + 1, recorded.entries.indexOf(batches[2]) - at);
    return serializeTranscript(recorded);
  } finally {
    rmSync(dir, { recursive: true });
    bpffs.unmount();
  }
}
