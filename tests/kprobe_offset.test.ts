/**
 * A kprobe's offset into its function reaches the kernel (perf_event_attr's
 * config2, the kprobe PMU's `probe_offset`), from `attachKprobe` and from a
 * `kprobe/fn+0x10` section alike. This kernel has no kprobe PMU, so the
 * backend stands in for the two sysfs files and for perf_event_open, and the
 * attr the kernel would have been handed is read back.
 */

import assert from "node:assert/strict";
import type { Attr } from "../ffi/attr.ts";
import { forwardingBackend } from "../ffi/backend.ts";
import { ENOENT } from "../ffi/errno.ts";
import { Kernel, liveKernel } from "../ffi/kernel.ts";
import { KPROBE_TYPE_PATH, PERF_EVENT_ATTR, type PerfEventField } from "../ffi/perf_event.ts";
import { BpfError, Program } from "../mod.ts";
import { programSection } from "../object/sections.ts";
import { rememberSection } from "../programs/attach_section.ts";
import { liveTest } from "./helpers/live.ts";

/** r0 = 0; exit */
const RETURN_0 = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

/** A kernel whose kprobe PMU is type 6 and whose perf_event_open notes each attr's config2 and refuses. */
function probingKernel(): { kernel: Kernel; offsets: number[] } {
  const live = liveKernel().backend;
  const offsets: number[] = [];
  const backend = Object.assign(forwardingBackend(() => live), {
    readFile(path: string): Uint8Array {
      if (path === KPROBE_TYPE_PATH) return new TextEncoder().encode("6\n");
      if (path === KPROBE_TYPE_PATH.replace(/type$/, "format/retprobe")) {
        return new TextEncoder().encode("config:0\n");
      }
      return live.readFile!(path);
    },
    perfEventOpen(attr: Attr<PerfEventField>) {
      assert.equal(attr.getU32(PERF_EVENT_ATTR.fields.type), 6);
      offsets.push(Number(attr.getBigU64(PERF_EVENT_ATTR.fields.config2)));
      return -ENOENT;
    },
  });
  return { kernel: new Kernel(backend), offsets };
}

liveTest(
  "a kprobe's offset is handed to the kernel in config2, by attachKprobe and by section",
  () => {
    const { kernel, offsets } = probingKernel();
    using program = Program.load(
      { type: "kprobe", instructions: RETURN_0, license: "GPL", name: "probe" },
      kernel,
    );
    const refused = (attach: () => unknown) =>
      assert.throws(attach, (e) => e instanceof BpfError && e.code === "ENOENT");
    refused(() => program.attachKprobe("do_sys_openat2", { offset: 16 }));
    refused(() => program.attachKprobe("do_sys_openat2"));
    rememberSection(
      program,
      "kprobe/do_sys_openat2+0x10",
      programSection("kprobe/do_sys_openat2+0x10")!,
    );
    refused(() => program.attach());
    assert.deepEqual(offsets, [16, 0, 16]);
  },
);

liveTest("a kretprobe with an offset is refused before any perf_event_open", () => {
  const { kernel, offsets } = probingKernel();
  using program = Program.load(
    { type: "kprobe", instructions: RETURN_0, license: "GPL", name: "probe" },
    kernel,
  );
  assert.throws(
    () => program.attachKprobe("do_sys_openat2", { retprobe: true, offset: 8 }),
    /^RangeError: opts\.offset: a kretprobe is placed at do_sys_openat2's entry, not at \+8$/,
  );
  assert.deepEqual(offsets, []);
});
