// tests/helpers/bpffs.ts: a test file's bpffs, whose set-up (`mounted`) may
// fail. Deno runs no after() once a before() throws, so a failed set-up must
// undo its own mount: each case mounts a bpffs of its own, in a new folder.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mountedBpffs } from "./helpers/bpffs.ts";
import { liveTest } from "./helpers/live.ts";

/**
 * The type of the file system mounted at `path` (the topmost, if several),
 * or `undefined` if `path` is no mount point (findmnt: Deno's test run has
 * no read access to /proc/self/mountinfo).
 */
function mountedAt(path: string): string | undefined {
  const found = spawnSync("findmnt", ["-n", "-o", "FSTYPE", "--mountpoint", path], {
    encoding: "utf8",
  });
  return found.status === 0 ? found.stdout.trim().split("\n").at(-1) : undefined;
}

liveTest("a set-up that throws leaves no bpffs mounted, and its error goes on", () => {
  let seen: string | undefined;
  const failure = new Error("set-up failed");
  assert.throws(
    () =>
      mountedBpffs("bpfmap-bpffs-helper-", (path) => {
        seen = path;
        // It did mount a bpffs there, which the failure must undo.
        assert.equal(mountedAt(path), "bpf");
        throw failure;
      }),
    (error) => error === failure,
  );
  assert.ok(seen !== undefined, "the set-up ran");
  assert.equal(mountedAt(seen), undefined, `${seen} is still mounted`);
  assert.equal(existsSync(seen), false, `${seen} is still there`);
});

liveTest("a set-up that succeeds leaves its bpffs mounted until unmount()", () => {
  let seen: string | undefined;
  const fresh = mountedBpffs("bpfmap-bpffs-helper-", (path) => {
    seen = path;
  });
  try {
    assert.equal(seen, fresh.path);
    assert.equal(mountedAt(fresh.path), "bpf");
  } finally {
    fresh.unmount();
  }
  assert.equal(mountedAt(fresh.path), undefined);
  assert.equal(existsSync(fresh.path), false);
});
