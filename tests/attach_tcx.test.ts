// tcx links (issue 14, part 4): sched_cls programs on a veth's ingress and egress, and XDP on the
// same veth, each counting the test's own datagrams across the pair (the peer end sits in a
// network namespace of its own), so that the counts are exact on every run: until the link is
// closed or detached, while it is pinned, and with other tcx programs on the same hook. Recorded,
// verified and replayed in both runtimes; the veth exists in live runs only.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { LINK_TYPE_TCX } from "../ffi/link_types.ts";
import { BpfError, type BpfMap, type BpfSystem, Link, listLinkIds, Program } from "../mod.ts";
import { TCX_NEXT } from "../programs/attach_tcx.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import {
  counted,
  counterMap,
  countsDatagrams,
  datagramCounter,
  talliedPrograms,
  TC_CONTEXT,
} from "./helpers/counting.ts";
import { exchangeDatagrams } from "./helpers/datagrams.ts";
import { exit, mov64Imm, program } from "./helpers/insns.ts";
import { liveTest, replayRun } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";
import { FROM_PEER, TO_PEER, VETH_IFINDEX, vethForTests } from "./helpers/veth.ts";

vethForTests();
const bpffs = bpffsForTests("bpfmap-tcx-");
const transcriptTest = transcriptTests(import.meta.url, { paths: () => ({ BPFFS: bpffs() }) });

/** A sched_cls program counting the test's datagrams into `map`, passing every packet on. */
const tcxCounter = (sys: BpfSystem, map?: BpfMap) =>
  datagramCounter(sys, "sched_cls", "count_tcx", map);

transcriptTest("a tcx ingress link counts the peer's datagrams until its fd is closed", (sys) => {
  const { map, program: counter } = tcxCounter(sys);
  const link = counter.attachTcx(VETH_IFINDEX, "ingress");
  exchangeDatagrams(3, FROM_PEER);
  assert.equal(counted(map), 3n);
  assert.deepEqual(link.info(), {
    type: LINK_TYPE_TCX,
    typeName: "tcx",
    id: link.id,
    programId: counter.id,
    ifindex: VETH_IFINDEX,
    attachType: "tcx_ingress",
  });
  assert.equal(String(link), `tcx link (id ${link.id})`);
  // Datagrams to the peer leave through egress: ingress does not see them.
  exchangeDatagrams(2, TO_PEER());
  assert.equal(counted(map), 3n);
  link.close();
  exchangeDatagrams(4, FROM_PEER);
  assert.equal(counted(map), 3n);
});

transcriptTest("a tcx egress link counts datagrams to the peer until detached", (sys) => {
  const { map, program: counter } = tcxCounter(sys);
  const link = counter.attachTcx(VETH_IFINDEX, "egress");
  exchangeDatagrams(5, TO_PEER());
  exchangeDatagrams(2, FROM_PEER);
  assert.equal(counted(map), 5n);
  assert.equal(link.info().attachType, "tcx_egress");
  link.detach();
  // Detached for good while the fd stays open: the link keeps its program, not the device.
  assert.deepEqual([link.info().programId, link.info().ifindex], [counter.id, 0]);
  exchangeDatagrams(3, TO_PEER());
  assert.equal(counted(map), 5n);
  link.close();
});

transcriptTest("a device runs many tcx programs: one put first, one last, both count", (sys) => {
  const [first, last] = [counterMap(sys), counterMap(sys)];
  const a = tcxCounter(sys, last).program.attachTcx(VETH_IFINDEX, "ingress", { position: "last" });
  const b = tcxCounter(sys, first).program.attachTcx(VETH_IFINDEX, "ingress", {
    position: "first",
  });
  exchangeDatagrams(4, FROM_PEER);
  assert.deepEqual([counted(first), counted(last)], [4n, 4n]);
  b.close();
  exchangeDatagrams(1, FROM_PEER);
  assert.deepEqual([counted(first), counted(last)], [4n, 5n]);
  a.close();
});

transcriptTest("a pinned tcx link counts with no fd open, and reopens from its pin", (sys) => {
  const { map, program: counter } = tcxCounter(sys);
  const link = counter.attachTcx(VETH_IFINDEX, "egress");
  const path = `${bpffs()}/tcx`;
  link.pin(path);
  link.close();
  counter.close();
  exchangeDatagrams(2, TO_PEER());
  assert.equal(counted(map), 2n);
  const reopened = sys.openPinnedLink(path);
  assert.deepEqual(
    [reopened.id, reopened.info().ifindex, reopened.info().attachType],
    [link.id, VETH_IFINDEX, "tcx_egress"],
  );
  // Detaching through the reopened fd ends the pinned link's attachment too.
  reopened.detach();
  exchangeDatagrams(3, TO_PEER());
  assert.equal(counted(map), 2n);
  reopened.close();
  if (!replayRun) rmSync(path);
});

transcriptTest("XDP on the veth counts the peer's datagrams, not those to it", (sys) => {
  const { map, program: xdp } = datagramCounter(sys, "xdp", "count_xdp");
  const link = xdp.attachXdp(VETH_IFINDEX);
  exchangeDatagrams(3, FROM_PEER);
  exchangeDatagrams(2, TO_PEER());
  assert.equal(counted(map), 3n);
  assert.deepEqual(link.info().ifindex, VETH_IFINDEX);
  link.close();
  exchangeDatagrams(1, FROM_PEER);
  assert.equal(counted(map), 3n);
});

transcriptTest("attachTcx refuses bad input before any syscall", (sys) => {
  const { programs: [xdp, tc], calls } = talliedPrograms(sys, [
    { type: "xdp", name: "x" },
    { type: "sched_cls" },
  ]);
  const before = calls();
  assert.throws(() => xdp.attachTcx(VETH_IFINDEX, "ingress"), {
    name: "TypeError",
    message: `attachTcx: xdp program "x" (id ${xdp.id}) is not a sched_cls program`,
  });
  assert.throws(() => tc.attachTcx(0, "ingress"), {
    name: "RangeError",
    message: "ifindex must be between 1 and 2147483647, got 0",
  });
  assert.throws(() => tc.attachTcx(1.5, "ingress"), /ifindex must be an integer/);
  // A device's name is read from sysfs: one that is no name is refused before that read.
  assert.throws(() => tc.attachTcx("../lo", "ingress"), /^TypeError: name: expected a network/);
  assert.throws(() => tc.attachTcx(VETH_IFINDEX, "sideways" as never), {
    name: "TypeError",
    message: "direction: expected \"ingress\" or \"egress\", got \"sideways\"",
  });
  assert.throws(
    () => tc.attachTcx(VETH_IFINDEX, "egress", { position: "middle" as never }),
    /^TypeError: opts.position: expected "first" or "last", got "middle"$/,
  );
  assert.throws(
    () => tc.attachTcx(VETH_IFINDEX, "egress", null as never),
    /opts must be an object/,
  );
  assert.equal(calls(), before);
  tc.close();
  assert.throws(() => tc.attachTcx(VETH_IFINDEX, "egress"), /^TypeError: attachTcx: .* is closed$/);
  xdp.close();
});

liveTest("bpftool and listLinkIds see a tcx link while it lives, and not after", () => {
  const instructions = program(mov64Imm(0, TCX_NEXT), exit());
  using tc = Program.load({ type: "sched_cls", instructions, license: "GPL", name: "pass_tcx" });
  const link = tc.attachTcx(VETH_IFINDEX, "egress");
  const shown = JSON.parse(
    execFileSync("bpftool", ["-j", "link", "show", "id", String(link.id)], { encoding: "utf8" }),
  );
  // bpftool 7.1 predates tcx: it shows the link type by number, and no device.
  assert.deepEqual([shown.id, shown.type, shown.prog_id], [link.id, LINK_TYPE_TCX, tc.id]);
  assert.ok(listLinkIds().includes(link.id));
  using byId = Link.fromId(link.id);
  assert.equal(byId.info().attachType, "tcx_egress");
  byId.close();
  link.close();
  assert.ok(!listLinkIds().includes(link.id));
  assert.throws(
    () => execFileSync("bpftool", ["link", "show", "id", String(link.id)], { stdio: "pipe" }),
    /Command failed/,
  );
});

type Counter = ReturnType<typeof datagramCounter>;

/** A sched_cls program counting the test's datagrams into a map of its own, ending tcx's chain. */
const tcxEnd = (sys: BpfSystem, name: string) => {
  const map = counterMap(sys);
  const instructions = countsDatagrams(map.fd, 0, TC_CONTEXT); // TCX_PASS: no program after it
  return {
    map,
    program: sys.loadProgram({ type: "sched_cls", instructions, license: "GPL", name }),
  };
};

transcriptTest(
  "tcx links placed after a link or before a program run there; a stale revision is refused",
  (sys) => {
    // Counters pass packets on; end ends the chain: what is placed after it sees nothing.
    const [p, m, z, l] = ["p_tcx", "m_tcx", "z_tcx", "l_tcx"].map((name) =>
      datagramCounter(sys, "sched_cls", name)
    ) as [Counter, Counter, Counter, Counter];
    const end = tcxEnd(sys, "end_tcx");
    const counts = () => [p, m, end, z, l].map(({ map }) => counted(map));
    const pLink = p.program.attachTcx(VETH_IFINDEX, "ingress");
    const endLink = end.program.attachTcx(VETH_IFINDEX, "ingress");
    const lLink = l.program.attachTcx(VETH_IFINDEX, "ingress"); // last: behind end
    exchangeDatagrams(3, FROM_PEER);
    assert.deepEqual(counts(), [3n, 0n, 3n, 0n, 0n]);
    // After p's link, so before end: m counts (placed last, it would not).
    const mLink = m.program.attachTcx(VETH_IFINDEX, "ingress", { after: pLink });
    exchangeDatagrams(2, FROM_PEER);
    assert.deepEqual(counts(), [5n, 2n, 5n, 0n, 0n]);
    // Before l's program, so behind end: z counts nothing (placed first, it would).
    const zLink = z.program.attachTcx(VETH_IFINDEX, "ingress", { before: l.program });
    exchangeDatagrams(1, FROM_PEER);
    assert.deepEqual(counts(), [6n, 3n, 6n, 0n, 0n]);
    // Five links made since the hook was empty: its revision is past 1, so 1 is stale.
    const stale = datagramCounter(sys, "sched_cls", "stale_tcx");
    assert.throws(
      () => stale.program.attachTcx(VETH_IFINDEX, "ingress", { expectedRevision: 1 }),
      (error) => error instanceof BpfError && error.code === "ESTALE",
    );
    // end's link gone, the chain goes on: p, m, z, l.
    endLink.close();
    exchangeDatagrams(1, FROM_PEER);
    assert.deepEqual(counts(), [7n, 4n, 6n, 1n, 1n]);
    for (const link of [pLink, mLink, zLink, lLink]) link.close();
  },
);

transcriptTest(
  "tcx placement is checked before any call: one of position, before, after",
  (sys) => {
    const { programs: [tc], calls } = talliedPrograms(sys, [{ type: "sched_cls", name: "placed" }]);
    const before = calls();
    const cases: [object, RegExp][] = [
      [{ position: "first", before: tc }, /position, before and after each place the link/],
      [{ before: tc, after: tc }, /position, before and after each place the link/],
      [{ before: { fd: -1 } }, /^TypeError: opts\.before: expected an open Program or Link/],
      [{ after: 3 }, /^TypeError: opts\.after: expected an open Program or Link, got number 3$/],
      [{ expectedRevision: 0 }, /^RangeError: opts\.expectedRevision: expected a u64 from 1/],
      [{ expectedRevision: 2n ** 64n }, /^RangeError: opts\.expectedRevision/],
    ];
    for (const [opts, message] of cases) {
      assert.throws(() => tc.attachTcx(VETH_IFINDEX, "ingress", opts), message);
    }
    assert.equal(calls(), before);
  },
);
