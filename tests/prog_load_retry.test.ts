/**
 * The verifier answers EAGAIN when a signal is pending during a load (a
 * profiler's SIGPROF): a load is asked again, five attempts in all, as
 * libbpf's `sys_bpf_prog_load` does; other commands and other errors are not.
 * The backend stands in for the pending signal by answering EAGAIN itself.
 */

import assert from "node:assert/strict";
import type { Attr } from "../ffi/attr.ts";
import { forwardingBackend } from "../ffi/backend.ts";
import { EAGAIN } from "../ffi/errno.ts";
import { Kernel, liveKernel } from "../ffi/kernel.ts";
import { BpfError, BpfMap, Program } from "../mod.ts";
import { liveTest } from "./helpers/live.ts";

/** r0 = 0; exit */
const RETURN_0 = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

/** A kernel whose first `busy` calls of `command` answer EAGAIN; `calls` counts what reached it. */
function busyKernel(command: string, busy: number) {
  const live = liveKernel().backend;
  const calls: string[] = [];
  const backend = Object.assign(forwardingBackend(() => live), {
    bpf(attr: Attr): number {
      calls.push(attr.command.name);
      if (attr.command.name === command && busy > 0) {
        busy--;
        return -EAGAIN;
      }
      return live.bpf(attr);
    },
  });
  return { kernel: new Kernel(backend), calls };
}

liveTest("a load the verifier gave up on (EAGAIN) is asked again, up to five attempts", () => {
  const fourBusy = busyKernel("BPF_PROG_LOAD", 4);
  using loaded = Program.load(
    { type: "socket_filter", instructions: RETURN_0, license: "GPL" },
    fourBusy.kernel,
  );
  assert.equal(loaded.type, 1); // BPF_PROG_TYPE_SOCKET_FILTER: loaded on the fifth attempt
  assert.equal(fourBusy.calls.filter((c) => c === "BPF_PROG_LOAD").length, 5);

  const fiveBusy = busyKernel("BPF_PROG_LOAD", 5);
  assert.throws(
    () =>
      Program.load(
        { type: "socket_filter", instructions: RETURN_0, license: "GPL" },
        fiveBusy.kernel,
      ),
    (e) => e instanceof BpfError && e.code === "EAGAIN" && e.op === "BPF_PROG_LOAD",
  );
  // Five attempts, then the load asked once more with a log for the verifier's reasons (which
  // this stand-in lets through: its fd is closed, and the first answer is the error).
  assert.equal(fiveBusy.calls.filter((c) => c === "BPF_PROG_LOAD").length, 6);
});

liveTest("EAGAIN from another command is not asked again", () => {
  const busy = busyKernel("BPF_MAP_CREATE", 1);
  assert.throws(
    () => BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 }, busy.kernel),
    (e) => e instanceof BpfError && e.code === "EAGAIN",
  );
  assert.deepEqual(busy.calls, ["BPF_MAP_CREATE"]);
});
