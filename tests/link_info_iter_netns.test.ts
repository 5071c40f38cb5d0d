// LinkInfo of iterator and network namespace links: an iter/bpf_map link's target name (read
// through the info's pointer into off-heap memory, sized by the length a first call wrote), and a
// flow dissector's link on a namespace of the test's own (`ip netns add`, so the machine's own
// flow dissection is left alone): its inode and attach type. Recorded, verified and replayed.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { after, before } from "node:test";
import { attachTypeNumber } from "../ffi/prog_types.ts";
import { attachBtfIdOf } from "../mod.ts";
import { createLink } from "../programs/link.ts";
import { exit, mov64Imm, program } from "./helpers/insns.ts";
import { replayRun } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

/** `r0 = 0; exit`: an iterator that prints nothing, a flow dissector that says BPF_OK. */
const RETURN_0 = program(mov64Imm(0, 0), exit());

/** The network namespace of this run (`ip netns add` pins it at /run/netns/NAME). */
const NETNS = `bpfmap-link-info-${process.pid}`;
const NETNS_PATH = `/run/netns/${NETNS}`;
if (!replayRun) {
  let made = false;
  before(() => {
    execFileSync("ip", ["netns", "add", NETNS]);
    made = true;
  });
  after(() => {
    if (made) execFileSync("ip", ["netns", "delete", NETNS]);
  });
}

transcriptTest("an iter/bpf_map link's info names its iterator, and no map", (sys) => {
  const iter = sys.loadProgram({
    type: "tracing",
    expectedAttachType: "trace_iter",
    attachBtfId: attachBtfIdOf("trace_iter", "bpf_map", sys.kernel),
    instructions: RETURN_0,
    license: "GPL",
  });
  const link = iter.attachTracing();
  // mapId is left out: the kernel writes a map's id only for iterators over a map's elements.
  assert.deepEqual(link.info(), {
    type: 4,
    typeName: "iter",
    id: link.id,
    programId: iter.id,
    targetName: "bpf_map",
  });
});

transcriptTest("a flow dissector's netns link: the namespace's inode and attach type", (sys) => {
  const dissector = sys.loadProgram({
    type: "flow_dissector",
    instructions: RETURN_0,
    license: "GPL",
  });
  // A replay opens a stand-in: the namespace's fd is "foreign" to a transcript either way.
  const fd = openSync(replayRun ? tmpdir() : NETNS_PATH, constants.O_RDONLY);
  let link;
  try {
    const target = { target: fd, attachType: attachTypeNumber("flow_dissector") };
    link = createLink(sys.kernel, dissector.fd, target, "flow dissector on the test's netns");
  } finally {
    closeSync(fd);
  }
  assert.deepEqual(link.info(), {
    type: 5,
    typeName: "netns",
    id: link.id,
    programId: dissector.id,
    // The inode a transcript writes as 0: a new namespace has a new one each run.
    netnsIno: replayRun ? 0 : statSync(NETNS_PATH).ino,
    attachType: "flow_dissector",
  });
  link.close();
});
