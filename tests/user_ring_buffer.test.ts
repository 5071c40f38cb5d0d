// User ring buffers written from user space (issue 15, item 2): UserRingBuffer reserves, fills,
// submits and discards requests; tests/bpf/ringbuf_user.bpf.c's XDP program, test-run, drains
// them with bpf_user_ringbuf_drain and keeps each request's tag and last 8 bytes, so the test sees
// which requests the kernel read, in which order, and that each arrived whole (one larger than a
// page, ones that wrap around the ring's end). Recorded, and replayed with no FFI.

import assert from "node:assert/strict";
import { type BpfMap, type BpfSystem, UserRingBuffer } from "../mod.ts";
import { objectFixture } from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
/** The object clang builds, kept as a fixture beside the transcripts. */
const drainObject = objectFixture(import.meta.url, "ringbuf_user.bpf.c");

const XDP_PASS = 2;
const SEEN = 64; // the slots of struct drained in ringbuf_user.bpf.c

/** What the program saw, from its .bss (struct drained). */
interface Drained {
  lastDrain: bigint;
  count: number;
  /** Tag and last word of each request drained so far, in order (up to SEEN). */
  requests: [number, bigint][];
}

function drainer(sys: BpfSystem): { requests: BpfMap; drain(): Drained } {
  const object = sys.loadObject(drainObject(), { name: "ringbuf_user" });
  const program = object.programs.get("drain")!;
  const bss = object.maps.get(".bss")!;
  return {
    requests: object.maps.get("requests")!,
    drain() {
      assert.equal(program.testRun({ data: new Uint8Array(64) }).retval, XDP_PASS);
      const bytes = bss.lookup(new Uint8Array(4))!;
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      const count = Number(view.getBigUint64(8, true));
      const requests: [number, bigint][] = [];
      for (let i = 0; i < Math.min(count, SEEN); i++) {
        requests.push([view.getUint32(16 + 4 * i, true), view.getBigUint64(272 + 8 * i, true)]);
      }
      return { lastDrain: view.getBigInt64(0, true), count, requests };
    },
  };
}

/** The last word of request `tag` of `size` bytes: it proves the whole request arrived. */
const lastWord = (tag: number, size: number) => BigInt(tag) * 1_000_003n + BigInt(size);

/** Fills a reserved request as the program reads it: its size, its tag, ..., its last word. */
function fill(record: Uint8Array, tag: number): Uint8Array {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  for (let i = 8; i < record.byteLength - 8; i++) record[i] = i & 0xff;
  view.setUint32(0, record.byteLength, true);
  view.setUint32(4, tag, true);
  view.setBigUint64(record.byteLength - 8, lastWord(tag, record.byteLength), true);
  return record;
}

/** Reserves, fills and submits a request. */
function send(ring: UserRingBuffer, size: number, tag: number): void {
  const record = ring.reserve(size);
  assert.ok(record !== undefined, `no room for request ${tag}`);
  ring.submit(fill(record, tag));
}

transcriptTest("requests reach the program in order and whole, one larger than a page", (sys) => {
  const { requests, drain } = drainer(sys);
  using ring = new UserRingBuffer(requests);
  send(ring, 16, 1);
  send(ring, 100, 2);
  send(ring, 5000, 3);
  assert.equal(ring.pending(), 24 + 112 + 5008); // each with its 8-byte header, rounded to 8
  const seen = drain();
  assert.equal(seen.lastDrain, 3n);
  assert.deepEqual(seen.requests, [[1, lastWord(1, 16)], [2, lastWord(2, 100)], [
    3,
    lastWord(3, 5000),
  ]]);
  assert.equal(ring.pending(), 0); // drained: the room is the producer's again
});

transcriptTest(
  "a discarded request is skipped; a reserved one holds back those after it",
  (sys) => {
    const { requests, drain } = drainer(sys);
    using ring = new UserRingBuffer(requests);
    const held = fill(ring.reserve(16)!, 1);
    send(ring, 16, 2);
    assert.equal(drain().count, 0); // request 1 is still being written: the kernel stops there
    ring.submit(held);
    ring.discard(fill(ring.reserve(32)!, 3));
    send(ring, 24, 4);
    const seen = drain();
    assert.equal(seen.lastDrain, 3n); // 1, 2 and 4: the discarded one is not handed to the program
    assert.deepEqual(seen.requests.map(([tag]) => tag), [1, 2, 4]);
    assert.equal(ring.pending(), 0);
  },
);

transcriptTest("a request of 0 bytes is handed over and holds back none after it", (sys) => {
  const { requests, drain } = drainer(sys);
  using ring = new UserRingBuffer(requests);
  ring.submit(ring.reserve(0)!);
  send(ring, 16, 5);
  assert.equal(ring.pending(), 8 + 24); // a header alone, then the request
  const first = drain();
  assert.deepEqual([first.lastDrain, first.count], [1n, 0]); // too short: the program stops at it
  const second = drain();
  assert.deepEqual(second.requests.map(([tag]) => tag), [5]);
  assert.equal(ring.pending(), 0);
});

transcriptTest("requests that run past the ring's end arrive whole, round after round", (sys) => {
  const { requests, drain } = drainer(sys);
  using ring = new UserRingBuffer(requests);
  assert.equal(ring.size, 16384);
  // 5 rounds of 10 requests of 1,000 bytes (1,008 in the ring): 50,400 bytes through 16,384.
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 10; i++) send(ring, 1000, round * 10 + i);
    assert.equal(drain().lastDrain, 10n);
  }
  const seen = drain();
  assert.equal(seen.count, 50);
  assert.deepEqual(
    seen.requests,
    Array.from({ length: 50 }, (_, tag) => [tag, lastWord(tag, 1000)]),
  );
});

transcriptTest("a full ring reserves nothing until the kernel drains", (sys) => {
  const { requests, drain } = drainer(sys);
  using ring = new UserRingBuffer(requests);
  // 4,096 bytes each with the header: four fill the 16,384-byte ring.
  for (let tag = 0; tag < 4; tag++) send(ring, 4088, tag);
  assert.equal(ring.reserve(8), undefined);
  assert.equal(ring.pending(), 16384);
  assert.equal(drain().lastDrain, 4n);
  send(ring, 4088, 4);
  assert.deepEqual(drain().requests.map(([tag]) => tag), [0, 1, 2, 3, 4]);
});

transcriptTest(
  "reserveAsync waits, without blocking the event loop, for a drain to make room",
  async (sys) => {
    const { requests, drain } = drainer(sys);
    using ring = new UserRingBuffer(requests);
    for (let tag = 0; tag < 4; tag++) send(ring, 4088, tag); // full
    assert.equal(await ring.reserveAsync(4088, 0), undefined); // no room, and no wait
    let drained = false;
    // Only this timer, firing while reserveAsync waits, makes room.
    const timer = setTimeout(() => {
      drained = true;
      assert.equal(drain().lastDrain, 4n);
    }, 0);
    let record: Uint8Array | undefined;
    try {
      record = await ring.reserveAsync(4088);
    } finally {
      clearTimeout(timer);
    }
    assert.ok(drained && record !== undefined);
    ring.submit(fill(record, 4));
    assert.deepEqual(drain().requests.map(([tag]) => tag), [0, 1, 2, 3, 4]);
  },
);

transcriptTest("bad input is refused before any syscall", async (sys) => {
  const { requests } = drainer(sys);
  using events = sys.createMap({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
  assert.throws(() => new UserRingBuffer(events), {
    name: "TypeError",
    message: /is a ringbuf map, not a user_ringbuf \(a ringbuf is read from user space/,
  });
  using ring = new UserRingBuffer(requests);
  for (const size of [-1, 1.5, 16377, Number.NaN]) {
    assert.throws(() => ring.reserve(size), {
      name: "RangeError",
      message: /size must be an integer from 0 to 16376/,
    });
  }
  const record = ring.reserve(8)!;
  assert.throws(() => ring.submit(new Uint8Array(8)), /not a record reserved on/);
  ring.submit(record);
  assert.throws(() => ring.discard(record), /not a record reserved on/); // committed already
  await assert.rejects(ring.reserveAsync(8, -2), RangeError);
  ring.close();
  assert.throws(() => ring.reserve(8), /is closed/);
});
