// A perf_event_array declared without max_entries gets a slot per possible CPU, as libbpf gives it
// (tests/bpf/loader_perf_map.bpf.c): the kernel refuses a map of 0 entries, and a perf buffer puts
// each CPU's event in the CPU's slot. An override still wins.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { PerfBuffer } from "../mod.ts";
import {
  bpftoolShow,
  kernelToolTest,
  objectFixture,
  withLibbpfLoaded,
} from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const perfObject = objectFixture(import.meta.url, "loader_perf_map.bpf.c");

transcriptTest("a perf_event_array without max_entries has a slot per possible CPU", (sys) => {
  const object = sys.loadObject(perfObject(), { name: "perf_map" });
  const events = object.map("events");
  assert.equal(events.maxEntries, sys.kernel.possibleCpus());
  // A perf buffer puts each CPU's event in the CPU's slot: with fewer slots, it could not.
  // (Which CPU a test run's sample lands on is the scheduler's choice: perf_buffer.test reads them.)
  using perf = new PerfBuffer(events, { kernel: sys.kernel });
  assert.equal(perf.cpus.length, sys.kernel.possibleCpus());
});

transcriptTest("an override of max_entries wins over the CPU count", (sys) => {
  const object = sys.loadObject(perfObject(), {
    name: "perf_map",
    maps: { events: { maxEntries: 64 } },
  });
  assert.equal(object.map("events").maxEntries, 64);
});

kernelToolTest("libbpf sizes the same map alike", () => {
  withLibbpfLoaded("loader_perf_map.bpf.c", (_path, bpffs) => {
    assert.equal(bpftoolShow("map", `${bpffs}/maps/events`).max_entries, countPossible());
  });
});

/** The possible CPUs, counted from sysfs by hand. */
function countPossible(): number {
  // Read by cat: Deno opens /sys files only with --allow-all.
  const text = execFileSync("cat", ["/sys/devices/system/cpu/possible"], { encoding: "utf8" });
  return text.trim().split(",").reduce((n, part) => {
    const [a, b] = part.split("-").map(Number);
    return n + (b === undefined ? 1 : b - a! + 1);
  }, 0);
}
