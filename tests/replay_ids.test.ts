// What a transcript renames in a map's values. A prog_array lookup answers with the program's
// id, which differs from run to run: transcripts write it as the program's virtual id, as they
// write ids anywhere else, so the lookup verifies and replays. Fds the code stores in a map
// holding fds become handles; one bpfmap never got from the kernel is written as all ones, not
// as its number, which a handle could equal: a replay passing a stray fd where the recording
// had a program (or a program where it had a stray fd) diverges.

import assert from "node:assert/strict";
import { test } from "node:test";
import { type BpfSystem, openSystem, type Program } from "../mod.ts";
import { REPLAY_FD_BASE } from "../replay/identities.ts";
import { ReplayDivergenceError } from "../replay/player.ts";
import { u32 } from "./helpers/bytes.ts";
import { exit, mov64Imm, program } from "./helpers/insns.ts";
import { throwsBpf } from "./helpers/live.ts";
import { fixturePath, transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
/** An fd number no process here has open. */
const STRAY_FD = 999_999;
const SLOTS = "a prog_array's slots answer with their programs' ids, recorded and replayed";

/** What the code stores in slot 0 and slot 2, given the first program. */
interface Stored {
  first: (first: Program) => number;
  stray: (first: Program) => number;
}
const AS_WRITTEN: Stored = { first: (first) => first.fd, stray: () => STRAY_FD };

/** Fills a prog_array with two programs and a stray fd, and looks the programs up. */
function slots(sys: BpfSystem, stored: Stored): void {
  using jumps = sys.createMap({ type: "prog_array", keySize: 4, valueSize: 4, maxEntries: 4 });
  const load = (retval: number) =>
    sys.loadProgram({
      type: "socket_filter",
      instructions: program(mov64Imm(0, retval), exit()),
      license: "GPL",
    });
  using first = load(1);
  using second = load(2);
  jumps.update(u32(0), u32(stored.first(first)));
  jumps.update(u32(1), u32(second.fd));
  // No program behind it: the kernel says so, and nothing is stored.
  throwsBpf(() => jumps.update(u32(2), u32(stored.stray(first))), "EBADF", "BPF_MAP_UPDATE_ELEM");
  const ids = [first.info().id, second.info().id];
  assert.notEqual(ids[0], ids[1]);
  assert.deepEqual(jumps.lookup(u32(0)), u32(ids[0]!));
  assert.deepEqual(jumps.lookup(u32(1)), u32(ids[1]!));
  assert.equal(jumps.lookup(u32(2)), undefined);
  assert.deepEqual([...jumps.entries()], [[u32(0), u32(ids[0]!)], [u32(1), u32(ids[1]!)]]);
}

transcriptTest(SLOTS, (sys) => slots(sys, AS_WRITTEN));

/** `SLOTS`'s transcript replayed by `slots` storing `stored`. */
async function replaySlots(stored: Stored): Promise<void> {
  const transcript = fixturePath(import.meta.url, SLOTS);
  const system = await openSystem({ transcript, mode: "replay", modeFromEnvironment: false });
  await system.run((sys) => slots(sys, stored));
}

test("a replay storing a stray fd or a program where the recording had the other diverges", async () => {
  await replaySlots(AS_WRITTEN); // as recorded: the transcript serves every call
  // The first program's handle as a bare number: a stray fd that equals a handle.
  const handleNumber = (first: Program) => first.fd - REPLAY_FD_BASE;
  await assert.rejects(
    replaySlots({ ...AS_WRITTEN, first: handleNumber }),
    (error) =>
      error instanceof ReplayDivergenceError
      && /BPF_MAP_UPDATE_ELEM/.test(error.message)
      && /value: expected 0[1-9]000000, got ffffffff/.test(error.message),
  );
  // A program where the recording stored a stray fd (throwsBpf reports the divergence).
  await assert.rejects(
    replaySlots({ ...AS_WRITTEN, stray: (first) => first.fd }),
    (error) =>
      error instanceof Error && /got ReplayDivergenceError/.test(error.message)
      && /value: expected ffffffff, got 0[1-9]000000/.test(error.message),
  );
});
