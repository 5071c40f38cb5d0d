// Ring buffers read from user space (issue 15, items 1 and 5): tests/bpf/ringbuf.bpf.c's XDP
// program, test-run, writes the records the test asks for (bpf_ringbuf_output of payload bytes,
// reserve + submit, reserve + discard, numbered records from several CPUs); RingBuffer reads them
// back, in order and byte for byte, through wrap-around, discards, a full ring and records larger
// than a page. Each stream is recorded as the consumer saw it and replays with no FFI. The object
// clang built is a fixture beside the transcripts (written when recording), as the loader's tests
// keep theirs.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { Kernel, liveKernel } from "../ffi/kernel.ts";
import {
  BpfMap,
  BpfObject,
  type BpfSystem,
  type Program,
  RingBuffer,
  RingBufferSet,
  struct,
  TRANSCRIPT_ENV,
  u32,
  u64,
  UserRingBuffer,
} from "../mod.ts";
import { canCollectGarbage, collectGarbage, liveTest } from "./helpers/live.ts";
import { objectFixture } from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
/** The object clang builds, kept as a fixture beside the transcripts. */
const ringObject = objectFixture(import.meta.url, "ringbuf.bpf.c");

// The program's operations (struct command in ringbuf.bpf.c).
const OUTPUT = 1;
const RESERVE = 2;
const ON_CPU = 3;
const EVENTS = 0;
const SMALL = 1;
const XDP_PASS = 2;

/** The payload byte at `index` (the bytes of an OUTPUT record past its sequence number). */
const payloadByte = (index: number) => (index * 7 + 3) & 0xff;

/** The object, loaded, with its payload written. */
interface Producer {
  object: BpfObject;
  program: Program;
  events: BpfMap;
  small: BpfMap;
  /** Runs the program once with this command. */
  run(op: number, count: number, size?: number, ring?: number): void;
  /** `counters.failures`: reservations the kernel refused. */
  failures(): bigint;
}

function producer(sys: BpfSystem, maxEntries?: { events?: number }): Producer {
  const maps = maxEntries?.events === undefined
    ? {}
    : { events: { maxEntries: maxEntries.events } };
  const object = sys.loadObject(ringObject(), { name: "ringbuf", maps });
  const payload = new Uint8Array(16384).map((_, i) => payloadByte(i));
  object.maps.get(".data.payload")!.update(new Uint8Array(4), payload);
  const program = object.programs.get("produce")!;
  const counters = object.maps.get(".bss")!;
  return {
    object,
    program,
    events: object.maps.get("events")!,
    small: object.maps.get("small")!,
    run(op, count, size = 0, ring = EVENTS) {
      const data = new Uint8Array(64);
      new DataView(data.buffer).setUint32(0, op, true);
      new DataView(data.buffer).setUint32(4, count, true);
      new DataView(data.buffer).setUint32(8, size, true);
      new DataView(data.buffer).setUint32(12, ring, true);
      assert.equal(program.testRun({ data }).retval, XDP_PASS);
    },
    failures() {
      const bytes = counters.lookup(new Uint8Array(4))!;
      return new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
    },
  };
}

/** An OUTPUT record as the program writes it: the sequence number, then payload bytes. */
function outputRecord(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size).map((_, i) => payloadByte(i));
  new DataView(bytes.buffer).setUint32(0, seq, true);
  return bytes;
}

/** Every record `ring.consume` hands out now, copied, with where each sat in the ring. */
function consumeAll(ring: RingBuffer): { bytes: Uint8Array; offset: number }[] {
  const seen: { bytes: Uint8Array; offset: number }[] = [];
  ring.consume((record) => seen.push({ bytes: record.copy(), offset: record.offset }));
  return seen;
}

const seqOf = (bytes: Uint8Array) =>
  new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);

transcriptTest("records come in the order written, byte for byte, each consumed once", (sys) => {
  const { run, events } = producer(sys);
  using ring = new RingBuffer(events);
  run(OUTPUT, 5, 20);
  // 5 records of 20 bytes: each takes 8 + 20 rounded up to 32 bytes of the ring.
  assert.equal(ring.available(), 5 * 32);
  const seen = consumeAll(ring);
  assert.deepEqual(seen.map((r) => r.bytes), [0, 1, 2, 3, 4].map((seq) => outputRecord(seq, 20)));
  assert.deepEqual(seen.map((r) => r.offset), [8, 40, 72, 104, 136]); // after each 8-byte header
  assert.equal(ring.available(), 0);
  assert.equal(ring.consume(() => assert.fail("consumed twice")), 0);
  run(OUTPUT, 1, 4);
  assert.deepEqual(consumeAll(ring).map((r) => r.bytes), [outputRecord(5, 4)]);
});

transcriptTest("discarded records are skipped, and the records after them read", (sys) => {
  const { run, events } = producer(sys);
  using ring = new RingBuffer(events);
  run(RESERVE, 9); // indexes 2, 5 and 8 are discarded
  const record = struct({ seq: u32, index: u32, tag: u64 });
  const values: unknown[] = [];
  assert.equal(ring.typed(record).consume((value) => values.push(value)), 6);
  assert.deepEqual(
    values,
    [0, 1, 3, 4, 6, 7].map((index) => ({ seq: index, index, tag: 0x5eedn << 32n | BigInt(index) })),
  );
  assert.equal(ring.available(), 0); // the discarded last record was consumed too
});

transcriptTest("records that run past the ring's end read whole, round after round", (sys) => {
  const { run, events } = producer(sys);
  using ring = new RingBuffer(events);
  assert.equal(ring.size, 16384);
  const seen: { bytes: Uint8Array; offset: number }[] = [];
  // 5 rounds of 10 records of 1,000 bytes (1,008 in the ring): 50,400 bytes through 16,384.
  for (let round = 0; round < 5; round++) {
    run(OUTPUT, 10, 1000);
    seen.push(...consumeAll(ring));
  }
  // The count first: a walk gone wrong hands out thousands of records, too many to diff.
  assert.equal(seen.length, 50);
  assert.deepEqual(seen.map((r) => r.bytes), seen.map((_, seq) => outputRecord(seq, 1000)));
  // Some records began near the end and were read on in the second mapping of the data.
  // Record i's bytes start at i * 1,008 + 8 (its header first): those of 16, 32 and 48 cross the
  // end. (A walk goes on through the second mapping, so offsets past the end are the start again.)
  const crosses = (r: { bytes: Uint8Array; offset: number }) =>
    r.offset % ring.size + r.bytes.byteLength > ring.size;
  const wrapped = seen.flatMap((r, i) => crosses(r) ? [i] : []);
  assert.deepEqual(wrapped, [16, 32, 48]);
});

transcriptTest("a full ring refuses what does not fit; the program counts it", (sys) => {
  const { run, small, failures } = producer(sys);
  using ring = new RingBuffer(small);
  assert.equal(ring.size, 4096);
  // 1,008 bytes each: four fit in 4,096, the fifth and sixth do not.
  run(OUTPUT, 6, 1000, SMALL);
  assert.equal(failures(), 2n);
  assert.equal(ring.available(), 4 * 1008);
  // Sequence numbers 4 and 5 went to the records the kernel refused.
  assert.deepEqual(consumeAll(ring).map((r) => seqOf(r.bytes)), [0, 1, 2, 3]);
  run(OUTPUT, 1, 1000, SMALL); // consumed: room again
  assert.equal(failures(), 2n);
  assert.deepEqual(consumeAll(ring).map((r) => r.bytes), [outputRecord(6, 1000)]);
});

transcriptTest("a record larger than a page reads whole", (sys) => {
  const { run, events } = producer(sys);
  using ring = new RingBuffer(events);
  run(OUTPUT, 1, 12000);
  const seen = consumeAll(ring);
  run(OUTPUT, 1, 6000); // after 12,008 bytes: it runs past the end of the 16,384-byte ring
  seen.push(...consumeAll(ring));
  assert.deepEqual(seen.map((r) => r.bytes), [outputRecord(0, 12000), outputRecord(1, 6000)]);
  assert.equal(seen[1]!.offset, 12016);
});

transcriptTest("consume stops at its limit, at a callback's false, and at a throw", (sys) => {
  const { run, events } = producer(sys);
  using ring = new RingBuffer(events);
  run(OUTPUT, 6, 8);
  const seqs: number[] = [];
  const onRecord = (record: { view: DataView; offset: number }) =>
    seqs.push(record.view.getUint32(record.offset, true));
  assert.equal(ring.consume(onRecord, 2), 2);
  assert.deepEqual(seqs, [0, 1]);
  assert.equal(ring.consume((record) => onRecord(record) !== 3), 1); // false after seq 2
  assert.deepEqual(seqs, [0, 1, 2]);
  assert.throws(() => ring.consume(() => assert.fail("stop")), /stop/);
  assert.equal(ring.consume(onRecord), 2); // the record that threw was consumed
  assert.deepEqual(seqs, [0, 1, 2, 4, 5]);
});

transcriptTest(
  "poll returns what is ready, and 0 after its timeout when nothing is",
  async (sys) => {
    const { run, events } = producer(sys);
    using ring = new RingBuffer(events);
    assert.equal(ring.poll(20, () => assert.fail("no record")), 0);
    assert.equal(await ring.pollAsync(20, () => assert.fail("no record")), 0);
    run(OUTPUT, 3, 8);
    const seqs: number[] = [];
    assert.equal(ring.poll(-1, (record) => seqs.push(seqOf(record.bytes()))), 3);
    run(OUTPUT, 2, 8);
    assert.equal(await ring.pollAsync(-1, (record) => seqs.push(seqOf(record.bytes()))), 2);
    assert.deepEqual(seqs, [0, 1, 2, 3, 4]);
    assert.equal(ring.poll(0, () => assert.fail("no record")), 0);
  },
);

transcriptTest(
  "for await waits without blocking the event loop: a timer produces what it waits for",
  async (sys) => {
    const { run, events } = producer(sys);
    using ring = new RingBuffer(events);
    let fired = false;
    // Nothing is in the ring: only this timer, firing while the loop waits, puts records in.
    const timer = setTimeout(() => {
      fired = true;
      run(OUTPUT, 3, 8);
    }, 0);
    const seqs: number[] = [];
    try {
      for await (const record of ring) {
        assert.ok(fired);
        seqs.push(seqOf(record.bytes()));
        if (seqs.length === 2) break;
      }
    } finally {
      clearTimeout(timer);
    }
    assert.deepEqual(seqs, [0, 1]);
    // Leaving the loop consumed the record it saw last, and no other.
    assert.deepEqual(consumeAll(ring).map((r) => seqOf(r.bytes)), [2]);
  },
);

transcriptTest("consume inside a for await loop goes on after the loop's record", async (sys) => {
  const { run, events } = producer(sys);
  using ring = new RingBuffer(events);
  run(OUTPUT, 3, 8);
  const seen: number[] = [];
  for await (const record of ring) {
    seen.push(seqOf(record.bytes()));
    ring.consume((next) => seen.push(seqOf(next.bytes())));
    break;
  }
  assert.deepEqual(seen, [0, 1, 2]); // each once
  assert.equal(ring.available(), 0);
});

transcriptTest("a set waits for several rings at once, each with its callback", (sys) => {
  const { run, events, small } = producer(sys);
  using rings = new RingBufferSet();
  const seen: string[] = [];
  rings.add(events, (record) => seen.push(`events ${seqOf(record.bytes())}`));
  rings.add(small, (record) => seen.push(`small ${seqOf(record.bytes())}`));
  assert.equal(rings.poll(0), 0);
  run(OUTPUT, 2, 8, SMALL);
  assert.equal(rings.poll(-1), 2);
  assert.deepEqual(seen, ["small 0", "small 1"]);
  run(OUTPUT, 1, 8, EVENTS);
  run(OUTPUT, 1, 8, SMALL);
  assert.equal(rings.consume(), 2);
  assert.deepEqual(seen.slice(2), ["events 2", "small 3"]); // ring by ring, in the order added
  assert.equal(rings.poll(0), 0);
});

transcriptTest("a second reader of the ring goes on where the first stopped", (sys) => {
  const { run, events } = producer(sys);
  const first = new RingBuffer(events);
  run(OUTPUT, 4, 8);
  assert.equal(first.consume(() => {}, 3), 3);
  first.close();
  using second = new RingBuffer(events);
  assert.deepEqual(consumeAll(second).map((r) => seqOf(r.bytes)), [3]);
});

transcriptTest("typed records: a record shorter than the codec is refused, and consumed", (sys) => {
  const { run, events } = producer(sys);
  using ring = new RingBuffer(events);
  run(OUTPUT, 1, 4); // 4 bytes: its sequence number only
  run(OUTPUT, 1, 16);
  const typed = ring.typed(struct({ seq: u32, payload: u32, more: u64 }));
  assert.throws(() => typed.consume(() => {}), {
    name: "RangeError",
    message: /^a record of 4 bytes is shorter than struct .* \(16 bytes\)$/,
  });
  const values: unknown[] = [];
  assert.equal(typed.consume((value) => values.push(value)), 1);
  const payload = new DataView(outputRecord(1, 16).buffer);
  assert.deepEqual(values, [{
    seq: 1,
    payload: payload.getUint32(4, true),
    more: payload.getBigUint64(8, true),
  }]);
});

transcriptTest(
  "a set's rings are on one kernel: a map of another is refused before any mmap",
  (sys) => {
    const spec = { type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 } as const;
    using here = sys.createMap(spec);
    const { kernel, mmaps } = countingMmaps(sys.kernel); // another Kernel, on the same backend
    using there = BpfMap.create(spec, kernel);
    using rings = new RingBufferSet();
    rings.add(here, () => {});
    assert.throws(() => rings.add(there, () => {}), {
      name: "TypeError",
      message: /is on another kernel \(system\) than ringbuf map/,
    });
    assert.equal(mmaps(), 0);
    assert.equal(rings.size, 1);
  },
);

transcriptTest("bad input is refused before any syscall", (sys) => {
  const { events } = producer(sys);
  using hash = sys.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 });
  using user = sys.createMap({ type: "user_ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
  const { kernel, mmaps } = countingMmaps(sys.kernel);
  assert.throws(() => new RingBuffer(hash, kernel), {
    name: "TypeError",
    message: /^RingBuffer: .* is a hash map, not a ringbuf$/,
  });
  assert.throws(() => new RingBuffer(user, kernel), {
    message: /is a user_ringbuf map, not a ringbuf \(a user_ringbuf is written from user space/,
  });
  assert.throws(() => new RingBuffer({} as BpfMap, kernel), /map must be a BpfMap, got Object/);
  const closed = sys.createMap({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
  closed.close();
  assert.throws(() => new RingBuffer(closed, kernel), /is closed/);
  assert.equal(mmaps(), 0);
  const ring = new RingBuffer(events, kernel);
  assert.equal(mmaps(), 2);
  assert.throws(() => ring.poll(-2, () => {}), RangeError);
  assert.throws(() => ring.poll(1.5, () => {}), RangeError);
  assert.throws(() => ring.consume("x" as never), /onRecord must be a function, got string/);
  assert.throws(() => ring.consume(() => {}, 0), /limit must be positive/);
  assert.throws(() => ring.typed({} as never), /codec must be a codec/);
  ring.close();
  ring.close();
  assert.throws(() => ring.consume(() => {}), /is closed/);
  assert.equal(mmaps(), 2);
});

/** `kernel`'s backend with its mmap calls counted, as a kernel of its own. */
function countingMmaps(kernel: Kernel): { kernel: Kernel; mmaps: () => number } {
  let mmaps = 0;
  const counting = new Proxy(kernel.backend, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (key === "mmap") mmaps++;
        return value.apply(target, args);
      };
    },
  });
  return { kernel: new Kernel(counting, { closesLeakedFds: false }), mmaps: () => mmaps };
}

liveTest("producers on both CPUs at once: each CPU's records in its order, none lost", async () => {
  // Closed by hand: `using` on a BpfObject trips Deno's checker (see typed_methods.ts).
  const object = BpfObject.open(ringObject(), {
    name: "ringbuf",
    maps: { events: { maxEntries: 1 << 21 } },
  }).load();
  try {
    const program = object.programs.get("produce")!;
    using ring = new RingBuffer(object.maps.get("events")!);
    const PER_CHILD = 40 * 500;
    // Each child test-runs the program on its own CPU (XDP test runs stay on the caller's CPU).
    const children = [0, 1].map((cpu) => runPinned(cpu, program.id, 40));
    const counts = [0, 0];
    const next = [0, 0];
    let ended = false;
    void Promise.all(children).then(() => (ended = true));
    while (!ended || ring.available() > 0) {
      await ring.pollAsync(50, (record) => {
        const cpu = record.view.getUint32(record.offset, true);
        const index = record.view.getUint32(record.offset + 4, true);
        assert.equal(index, next[cpu], `CPU ${cpu}'s records out of order`);
        next[cpu]!++;
        counts[cpu]!++;
      });
    }
    for (const status of await Promise.all(children)) assert.equal(status, 0);
    assert.deepEqual(counts, [PER_CHILD, PER_CHILD]);
  } finally {
    object.close();
  }
});

/** Runs the program `rounds` times 500 records in a child pinned to `cpu`; its exit status. */
function runPinned(cpu: number, programId: number, rounds: number): Promise<number | null> {
  const code = `
    import { Program } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
    const program = Program.fromId(${programId});
    const data = new Uint8Array(64);
    new DataView(data.buffer).setUint32(0, ${ON_CPU}, true);
    new DataView(data.buffer).setUint32(4, 500, true);
    for (let i = 0; i < ${rounds}; i++) program.testRun({ data });
  `;
  const deno = new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  const child = spawn("taskset", ["-c", String(cpu), deno, "eval", code], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, [TRANSCRIPT_ENV]: "" },
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
}

/** How many mappings of BPF maps this process has (`/proc/self/maps`). */
function bpfMappings(): number {
  return liveKernel().backend.readTextFile("/proc/self/maps").split("\n")
    .filter((line) => line.includes("bpf-map")).length;
}

liveTest("rings dropped without close() are unmapped once collected", async () => {
  assert.ok(canCollectGarbage);
  using map = BpfMap.create({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
  using requests = BpfMap.create({
    type: "user_ringbuf",
    keySize: 0,
    valueSize: 0,
    maxEntries: 4096,
  });
  const before = bpfMappings();
  (() => {
    const ring = new RingBuffer(map);
    ring.poll(0, () => {}); // with an epoll fd too
    new UserRingBuffer(requests);
  })();
  assert.equal(bpfMappings(), before + 4); // two mappings each
  // Finalizers run after a collection, on a later turn of the event loop.
  for (let tries = 0; tries < 50 && bpfMappings() > before; tries++) {
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(bpfMappings(), before);
});
