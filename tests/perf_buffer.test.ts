// Perf buffers read from user space (issue 15, items 3 and 5): tests/bpf/perfbuf.bpf.c's XDP
// program, test-run, sends the samples the test asks for with bpf_perf_event_output on the CPU it
// runs on; the test pins its own thread to a CPU (taskset, live runs only) so that it knows whose
// ring they go to. PerfBuffer reads them back per CPU, in order and byte for byte, through
// wrap-around (samples copied out whole where they cross the end of the data area), full rings
// (lost samples counted by the kernel and reported) and samples larger than a page. Each stream is
// recorded as the reader saw it and replays with no FFI. A live test attaches the raw tracepoint
// program and makes syscalls from children pinned to each CPU.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import process from "node:process";
import { Kernel, liveKernel } from "../ffi/kernel.ts";
import {
  type BpfMap,
  BpfObject,
  type BpfSystem,
  PerfBuffer,
  type PerfRecord,
  struct,
  u32,
} from "../mod.ts";
import { liveTest } from "./helpers/live.ts";
import { objectFixture } from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
/** The object clang builds, kept as a fixture beside the transcripts. */
const perfObject = objectFixture(import.meta.url, "perfbuf.bpf.c");
const XDP_PASS = 2;

/** The payload byte at `index` (the bytes of a sample past its sequence number). */
const payloadByte = (index: number) => (index * 7 + 3) & 0xff;

interface Producer {
  events: BpfMap;
  /** Sends `count` samples of `size` bytes, from the CPU this thread is on. */
  run(count: number, size: number): void;
  /** `counters.failures`: samples the kernel refused. */
  failures(): bigint;
}

function producer(sys: BpfSystem): Producer {
  const object = sys.loadObject(perfObject(), {
    name: "perfbuf",
    maps: { events: { maxEntries: sys.kernel.possibleCpus() } },
  });
  object.maps.get(".data.payload")!.update(
    new Uint8Array(4),
    new Uint8Array(16384).map((_, i) => payloadByte(i)),
  );
  const program = object.programs.get("produce")!;
  const counters = object.maps.get(".bss")!;
  return {
    events: object.maps.get("events")!,
    run(count, size) {
      const data = new Uint8Array(64);
      new DataView(data.buffer).setUint32(0, count, true);
      new DataView(data.buffer).setUint32(4, size, true);
      assert.equal(program.testRun({ data }).retval, XDP_PASS);
    },
    failures() {
      const bytes = counters.lookup(new Uint8Array(4))!;
      return new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
    },
  };
}

/**
 * Runs `fn` with this process pinned to `cpu`, where the program's samples go: all its threads
 * (`deno test` runs tests on a thread other than the main one); the affinity is put back
 * after. A replay sends nothing: no pinning.
 */
function onCpu<T>(sys: BpfSystem, cpu: number, fn: () => T): T {
  if (sys.mode === "replay") return fn();
  const pid = String(process.pid);
  const before = execFileSync("taskset", ["-p", pid], { encoding: "utf8" }).trim().split(" ").at(
    -1,
  )!;
  execFileSync("taskset", ["-a", "-p", "-c", String(cpu), pid], { stdio: "ignore" });
  try {
    return fn();
  } finally {
    execFileSync("taskset", ["-a", "-p", before, pid], { stdio: "ignore" });
  }
}

/** A sample as the program sends it: the sequence number, then payload bytes. */
function sample(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size).map((_, i) => payloadByte(i));
  new DataView(bytes.buffer).setUint32(0, seq, true);
  return bytes;
}

interface Seen {
  cpu: number;
  bytes: Uint8Array;
  wrapped: boolean;
}

/** Every sample `perf.consume` hands out now, copied, with its CPU. */
function consumeAll(perf: PerfBuffer): Seen[] {
  const seen: Seen[] = [];
  perf.consume((record) =>
    seen.push({ cpu: record.cpu, bytes: record.copy(), wrapped: record.wrapped })
  );
  return seen;
}

const seqOf = (bytes: Uint8Array) =>
  new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);

transcriptTest("samples come in the order sent, byte for byte, each consumed once", (sys) => {
  const { run, events } = producer(sys);
  using perf = new PerfBuffer(events, { pages: 1 });
  onCpu(sys, 0, () => run(5, 20));
  // A record: an 8-byte header, the u32 size, then the 20 bytes (24: whole 8-byte words).
  assert.equal(perf.available(), 5 * 32);
  const seen = consumeAll(perf);
  assert.deepEqual(seen.map((s) => s.bytes), [0, 1, 2, 3, 4].map((seq) => sample(seq, 20)));
  assert.deepEqual(seen.map((s) => s.cpu), [0, 0, 0, 0, 0]);
  assert.equal(perf.available(), 0);
  assert.equal(perf.consume(() => assert.fail("consumed twice")), 0);
  // 21 bytes: the kernel pads the size and the bytes to 32, so the sample is 28 bytes long.
  onCpu(sys, 0, () => run(1, 21));
  const [padded] = consumeAll(perf);
  assert.deepEqual(padded!.bytes, new Uint8Array([...sample(5, 21), 0, 0, 0, 0, 0, 0, 0]));
});

transcriptTest(
  "samples that run past the end of a CPU's ring read whole, round after round",
  (sys) => {
    const { run, events } = producer(sys);
    using perf = new PerfBuffer(events, { pages: 1 });
    assert.equal(perf.size, 4096);
    // 6 rounds of 3 samples of 1,004 bytes (1,016 in the ring): 18,288 bytes through 4,096.
    const seen: Seen[] = [];
    for (let round = 0; round < 6; round++) {
      onCpu(sys, 0, () => run(3, 1004));
      seen.push(...consumeAll(perf));
    }
    assert.deepEqual(seen.map((s) => s.bytes), seen.map((_, seq) => sample(seq, 1004)));
    // Records at 4,064 and 8,128 (and on) cross the end of the ring: copied out whole.
    // Sample i starts at i * 1,016: those of 4, 8, 12 and 16 cross 4,096.
    assert.deepEqual(seen.flatMap((s, i) => s.wrapped ? [i] : []), [4, 8, 12, 16]);
  },
);

transcriptTest("a full ring loses samples: the kernel counts them, onLost reports them", (sys) => {
  const { run, events, failures } = producer(sys);
  const lost: [number, number][] = [];
  using perf = new PerfBuffer(events, {
    pages: 1,
    onLost: (cpu, count) => lost.push([cpu, count]),
  });
  // 1,016 bytes each: four fit in 4,096, the other six do not.
  onCpu(sys, 1, () => run(10, 1004));
  assert.equal(failures(), 6n);
  assert.deepEqual(consumeAll(perf).map((s) => [s.cpu, seqOf(s.bytes)]), [
    [1, 0],
    [1, 1],
    [1, 2],
    [1, 3],
  ]);
  // The kernel writes the count of lost samples once it has room again, before the next sample.
  assert.deepEqual(lost, []);
  onCpu(sys, 1, () => run(1, 1004));
  assert.deepEqual(consumeAll(perf).map((s) => seqOf(s.bytes)), [10]);
  assert.deepEqual(lost, [[1, 6]]);
  assert.equal(perf.lost, 6);
});

transcriptTest("a sample larger than a page reads whole, across the end too", (sys) => {
  const { run, events } = producer(sys);
  using perf = new PerfBuffer(events, { pages: 4 });
  onCpu(sys, 0, () => run(1, 12004));
  const seen = consumeAll(perf);
  onCpu(sys, 0, () => run(1, 6004)); // after 12,016 bytes: it runs past the end of 16,384
  seen.push(...consumeAll(perf));
  assert.deepEqual(seen.map((s) => s.bytes), [sample(0, 12004), sample(1, 6004)]);
  assert.deepEqual(seen.map((s) => s.wrapped), [false, true]);
});

transcriptTest("each CPU's samples come from its own ring, in its order", (sys) => {
  const { run, events } = producer(sys);
  using perf = new PerfBuffer(events, { pages: 1 });
  assert.deepEqual(perf.cpus, [0, 1]);
  onCpu(sys, 1, () => run(2, 8));
  onCpu(sys, 0, () => run(2, 8));
  onCpu(sys, 1, () => run(1, 8));
  // CPU by CPU, as libbpf's perf_buffer__consume: CPU 0's ring first.
  assert.deepEqual(consumeAll(perf).map((s) => [s.cpu, seqOf(s.bytes)]), [
    [0, 2],
    [0, 3],
    [1, 0],
    [1, 1],
    [1, 4],
  ]);
});

transcriptTest("consume stops at its limit, at a callback's false, and at a throw", (sys) => {
  const { run, events } = producer(sys);
  using perf = new PerfBuffer(events, { pages: 1 });
  onCpu(sys, 0, () => run(6, 8));
  const seqs: number[] = [];
  const onRecord = (record: PerfRecord) => seqs.push(record.view.getUint32(record.offset, true));
  assert.equal(perf.consume(onRecord, 2), 2);
  assert.deepEqual(seqs, [0, 1]);
  assert.equal(perf.consume((record) => onRecord(record) !== 3), 1); // false after seq 2
  assert.deepEqual(seqs, [0, 1, 2]);
  assert.throws(() => perf.consume(() => assert.fail("stop")), /stop/);
  assert.equal(perf.consume(onRecord), 2); // the sample that threw was consumed
  assert.deepEqual(seqs, [0, 1, 2, 4, 5]);
});

transcriptTest(
  "consume from a callback is refused; inside a for await loop it goes on after the loop's sample",
  async (sys) => {
    const { run, events } = producer(sys);
    using perf = new PerfBuffer(events, { pages: 1 });
    onCpu(sys, 0, () => run(4, 8));
    const seq = (record: PerfRecord) => record.view.getUint32(record.offset, true);
    // Each refusal is thrown out of a callback: that sample (0, then 1) is consumed.
    assert.throws(() => perf.consume(() => perf.consume(() => {})), {
      name: "TypeError",
      message: /^consume: called from a callback of perf buffer of /,
    });
    assert.throws(() => perf.consume(() => perf.poll(0, () => {})), {
      name: "TypeError",
      message: /^poll: called from a callback of perf buffer of /,
    });
    const seqs: number[] = [];
    for await (const record of perf) {
      seqs.push(seq(record));
      assert.equal(perf.consume((inner) => void seqs.push(seq(inner))), 1);
      break;
    }
    assert.deepEqual(seqs, [2, 3]);
    assert.equal(perf.available(), 0);
  },
);

transcriptTest("a callback that closes the buffer ends the walk there", (sys) => {
  const { run, events } = producer(sys);
  const perf = new PerfBuffer(events, { pages: 1 });
  onCpu(sys, 0, () => run(3, 8));
  onCpu(sys, 1, () => run(2, 8));
  const seqs: number[] = [];
  const count = perf.consume((record) => {
    seqs.push(record.view.getUint32(record.offset, true));
    if (seqs.length === 2) perf.close(); // its rings unmapped: no sample read after it
  });
  assert.equal(count, 2);
  assert.deepEqual(seqs, [0, 1]);
  assert.equal(perf.closed, true);
  assert.throws(() => perf.consume(() => {}), /consume: perf buffer of .* is closed/);
});

transcriptTest("typed samples decode through a codec, with their CPU", (sys) => {
  const { run, events } = producer(sys);
  using perf = new PerfBuffer(events, { pages: 1 });
  onCpu(sys, 1, () => run(2, 8));
  const values: unknown[] = [];
  const typed = perf.typed(struct({ seq: u32, byte4: u32 }));
  assert.equal(typed.consume((value, cpu) => values.push([cpu, value])), 2);
  const byte4 = new DataView(sample(0, 8).buffer).getUint32(4, true);
  assert.deepEqual(values, [[1, { seq: 0, byte4 }], [1, { seq: 1, byte4 }]]);
  onCpu(sys, 1, () => run(1, 4));
  assert.throws(() => typed.consume(() => {}), {
    name: "RangeError",
    message: /a sample of 4 bytes is shorter than .* \(8 bytes\)/,
  });
});

transcriptTest(
  "poll returns what is ready, and 0 after its timeout when nothing is",
  async (sys) => {
    const { run, events } = producer(sys);
    using perf = new PerfBuffer(events, { pages: 1 });
    assert.equal(perf.poll(20, () => assert.fail("no sample")), 0);
    assert.equal(await perf.pollAsync(20, () => assert.fail("no sample")), 0);
    onCpu(sys, 0, () => run(3, 8));
    const seqs: number[] = [];
    assert.equal(perf.poll(-1, (record) => seqs.push(seqOf(record.bytes()))), 3);
    onCpu(sys, 1, () => run(2, 8));
    assert.equal(await perf.pollAsync(-1, (record) => seqs.push(seqOf(record.bytes()))), 2);
    assert.deepEqual(seqs, [0, 1, 2, 3, 4]);
    assert.equal(perf.poll(0, () => assert.fail("no sample")), 0);
  },
);

transcriptTest("wakeupEvents and wakeupBytes wake a waiting reader only that late", (sys) => {
  const { run, events } = producer(sys);
  using byEvents = new PerfBuffer(events, { pages: 1, wakeupEvents: 3 });
  onCpu(sys, 0, () => run(2, 12));
  assert.equal(byEvents.poll(0, () => {}), 0); // two samples: no wake-up yet
  onCpu(sys, 0, () => run(1, 12));
  assert.equal(byEvents.poll(0, () => {}), 3); // the third woke it: all three are read
  byEvents.close();
  // 1,000 bytes: each 24-byte record (an 8-byte header, the size and 12 bytes) adds to them.
  using byBytes = new PerfBuffer(events, { pages: 1, wakeupBytes: 1000 });
  onCpu(sys, 0, () => run(41, 12)); // 984 bytes
  assert.equal(byBytes.poll(0, () => {}), 0);
  onCpu(sys, 0, () => run(1, 12)); // 1,008
  assert.equal(byBytes.poll(0, () => {}), 42);
});

transcriptTest(
  "for await waits without blocking the event loop: a timer sends what it waits for",
  async (sys) => {
    const { run, events } = producer(sys);
    using perf = new PerfBuffer(events, { pages: 1 });
    let fired = false;
    // Nothing is in the rings: only this timer, firing while the loop waits, sends samples.
    const timer = setTimeout(() => {
      fired = true;
      onCpu(sys, 1, () => run(3, 8));
    }, 0);
    const seqs: number[] = [];
    try {
      for await (const record of perf) {
        assert.ok(fired);
        seqs.push(seqOf(record.bytes()));
        if (seqs.length === 2) break;
      }
    } finally {
      clearTimeout(timer);
    }
    assert.deepEqual(seqs, [0, 1]);
    // Leaving the loop consumed the sample it saw last, and no other.
    assert.deepEqual(consumeAll(perf).map((s) => seqOf(s.bytes)), [2]);
  },
);

transcriptTest("close empties the map's slots; bad input is refused before any syscall", (sys) => {
  const { events, run, failures } = producer(sys);
  using hash = sys.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 });
  using ring = sys.createMap({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
  const { kernel, calls } = countingCalls(sys.kernel);
  assert.throws(() => new PerfBuffer(hash, { kernel }), {
    name: "TypeError",
    message: /^PerfBuffer: .* is a hash map, not a perf_event_array$/,
  });
  assert.throws(() => new PerfBuffer(ring, { kernel }), /not a perf_event_array \(a ringbuf is/);
  assert.throws(() => new PerfBuffer({} as BpfMap, { kernel }), /map must be a BpfMap, got Object/);
  for (const pages of [0, 3, 1.5]) {
    assert.throws(() => new PerfBuffer(events, { kernel, pages }), {
      name: "RangeError",
      message: /pages must be a power of 2/,
    });
  }
  assert.throws(() => new PerfBuffer(events, { kernel, wakeupEvents: 0 }), /wakeupEvents/);
  assert.throws(() => new PerfBuffer(events, { kernel, onLost: 1 as never }), /onLost/);
  assert.equal(calls(), 0);
  const perf = new PerfBuffer(events, { kernel, pages: 1 });
  assert.equal(calls(), 2 * 3 + 1); // per CPU: perf_event_open, mmap, ioctl; the CPU list
  assert.throws(() => perf.poll(-2, () => {}), RangeError);
  assert.throws(() => perf.consume("x" as never), /onRecord must be a function, got string/);
  assert.throws(() => perf.consume(() => {}, 0), /limit must be positive/);
  assert.throws(() => perf.typed({} as never), /codec must be a codec/);
  perf.close();
  perf.close();
  assert.throws(() => perf.consume(() => {}), /is closed/);
  // The slots emptied: the program's samples have nowhere to go (ENOENT), and are counted.
  run(1, 8);
  assert.equal(failures(), 1n);
  assert.equal(events.delete(new Uint8Array(4)), false);
});

/** `kernel`'s backend with its calls beyond bpf() counted, as a kernel of its own. */
function countingCalls(kernel: Kernel): { kernel: Kernel; calls: () => number } {
  let calls = 0;
  const counted = new Set(["perfEventOpen", "mmap", "ioctl", "readTextFile"]);
  const counting = new Proxy(kernel.backend, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (counted.has(key as string)) calls++;
        return value.apply(target, args);
      };
    },
  });
  return { kernel: new Kernel(counting, { closesLeakedFds: false }), calls: () => calls };
}

liveTest(
  "a raw tracepoint's samples on both CPUs: each CPU's in its order, none lost",
  async () => {
    using object = BpfObject.open(perfObject(), {
      name: "perfbuf",
      maps: { events: { maxEntries: liveKernel().possibleCpus() } },
    }).load();
    const bss = object.maps.get(".bss")!;
    using perf = new PerfBuffer(object.maps.get("events")!, { pages: 64 });
    using _link = object.programs.get("on_sys_enter")!.attachRawTracepoint("sys_enter");
    const counts = [0, 0];
    const next = [0, 0];
    const onRecord = (record: PerfRecord) => {
      const cpu = record.view.getUint32(record.offset, true);
      const index = record.view.getUint32(record.offset + 4, true);
      assert.equal(cpu, record.cpu, "a sample in another CPU's ring");
      assert.equal(index, next[cpu], `CPU ${cpu}'s samples out of order`);
      next[cpu]!++;
      counts[cpu]!++;
    };
    for (const cpu of [0, 1]) {
      // The child waits for a line, so its pid is the target before it makes the syscalls counted.
      const child = spawn("taskset", [
        "-c",
        String(cpu),
        "sh",
        "-c",
        "read line; exec dd if=/dev/zero of=/dev/null bs=1 count=3000 status=none",
      ], { stdio: ["pipe", "inherit", "inherit"] });
      const bytes = bss.lookup(new Uint8Array(4))!;
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(12, child.pid!, true);
      bss.update(new Uint8Array(4), bytes);
      const ended = new Promise((resolve) => child.on("close", resolve));
      child.stdin!.end("go\n");
      let done = false;
      void ended.then(() => (done = true));
      while (!done) await perf.pollAsync(50, onRecord);
      perf.consume(onRecord);
      assert.equal(await ended, 0);
    }
    const bytes = bss.lookup(new Uint8Array(4))!;
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    assert.equal(view.getBigUint64(0, true), 0n, "samples lost");
    assert.deepEqual(counts, [view.getUint32(16, true), view.getUint32(20, true)]);
    // dd's 6,000 reads and writes of one byte, on the CPU it was pinned to (and no other).
    assert.ok(counts[0]! >= 6000 && counts[1]! >= 6000, `${counts}`);
  },
);
