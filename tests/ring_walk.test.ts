// RingBuffer.consume's walk past a 4 GiB consumer position: the low word it stores after each
// record wraps there, and a producer reading the position between that store and the high
// word's would see it 4 GiB behind (a full ring, its records refused). Live only: 4 GiB go
// through a 16 MiB ring, too much for a transcript.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { BpfObject, RingBuffer, type RingRecord } from "../mod.ts";
import { liveTest } from "./helpers/live.ts";
import { withBuiltObject } from "./helpers/loader_object.ts";

// The program's operation and its target (struct command in tests/bpf/ringbuf.bpf.c).
const OUTPUT = 1;
const EVENTS = 0;
const XDP_PASS = 2;
const RING_SIZE = 16 << 20;
/** The records of a round: 2 runs of 512 (the program's most), 16,008 bytes each in the ring. */
const RECORD = 16000;
const SPAN = RECORD + 8;
const PER_ROUND = 1024;

liveTest("a walk whose position passes 4 GiB leaves producers room, then and after", () => {
  const bytes = withBuiltObject("ringbuf.bpf.c", (path) => new Uint8Array(readFileSync(path)));
  using object = BpfObject.open(bytes, {
    name: "ringwalk",
    maps: { events: { maxEntries: RING_SIZE } },
  }).load();
  const program = object.programs.get("produce")!;
  const counters = object.maps.get(".bss")!;
  const failures = () =>
    new DataView(counters.lookup(new Uint8Array(4))!.buffer).getBigUint64(0, true);
  const command = (count: number, size: number) =>
    new Uint8Array(new Uint32Array([OUTPUT, count, size, EVENTS, 0, 0, 0, 0]).buffer);
  const output = (count: number, size: number) =>
    assert.equal(program.testRun({ data: command(count, size) }).retval, XDP_PASS);
  using ring = new RingBuffer(object.maps.get("events")!);

  // Every record's sequence number, in order; the position counted as the kernel counts it.
  const seqs: number[] = [];
  let position = 0;
  let wrapped = false;
  const onRecord = (record: RingRecord) => {
    seqs.push(record.view.getUint32(record.offset, true));
    // What the walk has stored while this callback runs: the end of the record before.
    const stored = position;
    position += record.length === 8 ? 16 : SPAN;
    if (!wrapped && stored > 2 ** 32) {
      // Past 4 GiB: a producer writes now, mid-walk. The ring holds what this round wrote;
      // the position it reads must leave it the rest.
      wrapped = true;
      output(1, 8);
    }
  };
  const rounds = Math.ceil(2 ** 32 / (PER_ROUND * SPAN)) + 2;
  for (let round = 0; round < rounds; round++) {
    output(512, RECORD); // one run a call: with repeat, test runs yield the CPU between runs
    output(512, RECORD);
    // The walk that wraps ends there: the record written in it is the next walk's.
    for (let walks = 0; ring.available() > 0 && walks < 3; walks++) ring.consume(onRecord);
  }
  assert.ok(wrapped, `the position reached ${position}`);
  assert.equal(failures(), 0n); // the mid-walk record and every round's were taken
  // Every record read once, in order: the rounds' and the one written mid-walk.
  assert.equal(seqs.length, rounds * PER_ROUND + 1);
  assert.deepEqual(seqs.findIndex((seq, i) => seq !== i), -1);
});
