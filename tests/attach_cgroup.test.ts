// Cgroup links (issue 14, part 4): cgroup_skb on a cgroup's ingress and egress, and cgroup_sock on
// its sockets' creation, in a cgroup v2 directory the test makes. The test's datagrams are
// exchanged by a process that joins the cgroup first, so the counts are exact on every run, and
// the same exchange from outside the cgroup counts nothing. The cgroup's fd is not bpfmap's: a
// transcript writes it as "foreign", so the tests replay in both runtimes with no cgroup at all.

import assert from "node:assert/strict";
import { closeSync, constants, openSync, rmSync, statSync } from "node:fs";
import { LINK_TYPE_CGROUP } from "../ffi/link_types.ts";
import { type BpfSystem, Link, listLinkIds, Program } from "../mod.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import { cgroupForTests } from "./helpers/cgroup.ts";
import {
  counted,
  counterMap,
  counting,
  datagramCounter,
  talliedPrograms,
} from "./helpers/counting.ts";
import { exchangeDatagrams } from "./helpers/datagrams.ts";
import { BPF_W, exit, jneImm, ldxMem, mov64Imm, program } from "./helpers/insns.ts";
import { liveTest, replayRun } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const cgroup = cgroupForTests("bpfmap-attach-");
const bpffs = bpffsForTests("bpfmap-cgroup-");
const transcriptTest = transcriptTests(import.meta.url, { paths: () => ({ BPFFS: bpffs() }) });

/** `AF_INET` and `SOCK_DGRAM`, as `struct bpf_sock`'s `family` and `type` hold them. */
const AF_INET = 2;
const SOCK_DGRAM = 2;

/** cgroup_sock at socket creation: counts IPv4 datagram sockets, and allows every socket. */
function countsUdpSockets(sys: BpfSystem) {
  const map = counterMap(sys);
  const instructions = counting(map.fd, 1, [
    ldxMem(BPF_W, 2, 1, 4), // ctx->family
    (off) => jneImm(2, AF_INET, off),
    ldxMem(BPF_W, 2, 1, 8), // ctx->type
    (off) => jneImm(2, SOCK_DGRAM, off),
  ]);
  const sockets = sys.loadProgram({
    type: "cgroup_sock",
    expectedAttachType: "cgroup_inet_sock_create",
    instructions,
    license: "GPL",
    name: "count_udp_sock",
  });
  return { map, program: sockets };
}

transcriptTest("cgroup_skb links count the cgroup's datagrams out and in, until closed", (sys) => {
  const egress = datagramCounter(sys, "cgroup_skb", "count_egress");
  const ingress = datagramCounter(sys, "cgroup_skb", "count_ingress");
  const out = egress.program.attachCgroup(cgroup(), "cgroup_inet_egress");
  const into = ingress.program.attachCgroup(cgroup(), "cgroup_inet_ingress");
  // The sender and receiver are both in the cgroup: each datagram leaves and enters it once.
  exchangeDatagrams(3, { cgroup: cgroup() });
  assert.deepEqual([counted(egress.map), counted(ingress.map)], [3n, 3n]);
  // This process is not in the cgroup: its datagrams are not the cgroup's.
  exchangeDatagrams(2);
  assert.deepEqual([counted(egress.map), counted(ingress.map)], [3n, 3n]);
  out.close();
  exchangeDatagrams(4, { cgroup: cgroup() });
  assert.deepEqual([counted(egress.map), counted(ingress.map)], [3n, 7n]);
  into.close();
  exchangeDatagrams(1, { cgroup: cgroup() });
  assert.deepEqual([counted(egress.map), counted(ingress.map)], [3n, 7n]);
});

transcriptTest(
  "a cgroup link detaches while its fd stays open, and takes an fd of the cgroup",
  (sys) => {
    const { map, program: counter } = datagramCounter(sys, "cgroup_skb", "count_egress");
    const fd = openSync(cgroup(), constants.O_RDONLY | constants.O_DIRECTORY);
    let link: Link;
    try {
      link = counter.attachCgroup(fd, "cgroup_inet_egress");
    } finally {
      closeSync(fd); // the link holds the cgroup, not the fd
    }
    exchangeDatagrams(2, { cgroup: cgroup() });
    assert.equal(counted(map), 2n);
    link.detach();
    exchangeDatagrams(3, { cgroup: cgroup() });
    assert.equal(counted(map), 2n);
    assert.equal(link.info().programId, counter.id);
    link.close();
  },
);

transcriptTest("a pinned cgroup link counts with no fd open, and reopens from its pin", (sys) => {
  const { map, program: counter } = datagramCounter(sys, "cgroup_skb", "count_ingress");
  const link = counter.attachCgroup(cgroup(), "cgroup_inet_ingress");
  const path = `${bpffs()}/cgroup_link`;
  link.pin(path);
  link.close();
  counter.close();
  exchangeDatagrams(3, { cgroup: cgroup() });
  assert.equal(counted(map), 3n);
  const reopened = sys.openPinnedLink(path);
  assert.equal(reopened.id, link.id);
  reopened.detach();
  exchangeDatagrams(1, { cgroup: cgroup() });
  assert.equal(counted(map), 3n);
  reopened.close();
  if (!replayRun) rmSync(path);
});

transcriptTest("a cgroup_sock link counts the sockets the cgroup's processes create", (sys) => {
  const { map, program: sockets } = countsUdpSockets(sys);
  const link = sockets.attachCgroup(cgroup(), "cgroup_inet_sock_create");
  // The exchange opens two UDP sockets, a receiver and a sender, in the cgroup.
  exchangeDatagrams(1, { cgroup: cgroup() });
  assert.equal(counted(map), 2n);
  exchangeDatagrams(1);
  assert.equal(counted(map), 2n);
  link.close();
  exchangeDatagrams(1, { cgroup: cgroup() });
  assert.equal(counted(map), 2n);
});

transcriptTest("attachCgroup refuses bad input before any syscall", (sys) => {
  const { programs: [skb, xdp], calls } = talliedPrograms(sys, [
    { type: "cgroup_skb", name: "skb" },
    { type: "xdp" },
  ]);
  const before = calls();
  assert.throws(() => skb.attachCgroup(cgroup(), "cgroup_inet_sock_create"), {
    name: "TypeError",
    message: `attachCgroup: cgroup_skb program "skb" (id ${skb.id}) is not a cgroup_sock program`,
  });
  assert.throws(
    () => xdp.attachCgroup(cgroup(), "cgroup_inet_ingress"),
    /is not a cgroup_skb program/,
  );
  assert.throws(() => skb.attachCgroup(cgroup(), "xdp" as never), {
    name: "TypeError",
    message: "attachType: xdp is not a cgroup attach type (e.g. \"cgroup_inet_ingress\")",
  });
  assert.throws(
    () => skb.attachCgroup(cgroup(), "ingress" as never),
    /unknown attach type "ingress"/,
  );
  assert.throws(() => skb.attachCgroup("", "cgroup_inet_ingress"), /^TypeError: cgroup: expected/);
  assert.throws(() => skb.attachCgroup(-1, "cgroup_inet_ingress"), RangeError);
  assert.throws(() => skb.attachCgroup(null as never, "cgroup_inet_ingress"), TypeError);
  assert.throws(() => skb.attachCgroup(`${cgroup()}/no-such-cgroup`, "cgroup_inet_ingress"), {
    code: "ENOENT",
  });
  assert.equal(calls(), before);
  skb.close();
  assert.throws(() => skb.attachCgroup(cgroup(), "cgroup_inet_ingress"), /is closed$/);
  xdp.close();
});

liveTest(
  "a cgroup link's info names its cgroup by inode, and the kernel lists it until closed",
  () => {
    const instructions = program(mov64Imm(0, 1), exit());
    using skb = Program.load({ type: "cgroup_skb", instructions, license: "GPL" });
    const link = skb.attachCgroup(cgroup(), "cgroup_inet_egress");
    // The cgroup's id differs from run to run: this is why it is asserted live only.
    assert.deepEqual(link.info(), {
      type: LINK_TYPE_CGROUP,
      typeName: "cgroup",
      id: link.id,
      programId: skb.id,
      cgroupId: BigInt(statSync(cgroup()).ino),
      attachType: "cgroup_inet_egress",
    });
    assert.ok(listLinkIds().includes(link.id));
    link.close();
    assert.ok(!listLinkIds().includes(link.id));
  },
);
