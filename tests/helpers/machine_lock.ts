/**
 * A lock over a resource the whole machine has one of (loopback takes one
 * XDP program at a time): two test runs on one machine take turns instead of
 * one failing with EBUSY. The lock is a folder under the temporary directory
 * holding the owner's pid; a lock whose owner has died is taken over.
 *
 * @module
 */

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Whether process `pid` is alive (signal 0 checks without sending). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

/**
 * Takes the machine-wide lock `name`, waiting while another live process
 * holds it; returns its release.
 */
export function lockMachine(name: string): () => void {
  const dir = join(tmpdir(), `bpfmap-lock-${name}`);
  const owner = join(dir, "pid");
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(owner, String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
    }
    let pid = Number.NaN;
    try {
      pid = Number(readFileSync(owner, "utf8"));
    } catch { /* the owner is between mkdir and writing its pid, or has just left */ }
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) {
      rmSync(dir, { recursive: true, force: true }); // its owner died holding it
      continue;
    }
    Atomics.wait(pause, 0, 0, 50); // the holder's turn: a test file's worth
  }
}
