// Maps a clang-built program created (tests/bpf/maps.bpf.c, loaded by
// bpftool): typed() builds its codecs from the BTF clang wrote, FUNC, VAR and
// DATASEC records, typedef chains and bitfields included, and BPF_F_LOCK works
// on the value clang laid out. Recorded live, so it replays anywhere.

import assert from "node:assert/strict";
import { BPF_F_LOCK } from "../mod.ts";
import { clangTests } from "./helpers/clang_object.ts";

/** Its folder on this run's own bpffs (transcripts write it as ${BPFFS}); replays mount none. */
const { clangTest, bpffs } = clangTests(import.meta.url, "bpfmap-clang-");

clangTest("typed() decodes a clang-built map's keys and values from its BTF", (system) => {
  using flows = system.openPinned(`${bpffs()}/maps/flows`);
  const typed = flows.typed();
  assert.equal(typed.key.name, "struct flow_key { saddr: u32; dport: u16be; proto: u8 }");
  assert.equal(
    typed.value.name,
    "struct flow_stats { lock: bpf_spin_lock; packets: u64; bytes: u64; ifname: char[8] }",
  );
  // saddr is a host-order __u32 of 10.0.0.1's bytes; dport is __be16, so 80.
  assert.deepEqual([...typed.entries()], [[
    { saddr: 0x0100000a, dport: 80, proto: 6 },
    { packets: 5n, bytes: 100n, ifname: "eth0" },
  ]]);
  // Written through codecs built from clang's BTF, under the value's spin lock.
  const key = { saddr: 0x0100007f, dport: 53, proto: 17 };
  typed.set(key, { packets: 1n, bytes: 64n, ifname: "lo" }, BPF_F_LOCK);
  assert.deepEqual(typed.get(key, BPF_F_LOCK), { packets: 1n, bytes: 64n, ifname: "lo" });
  assert.equal(
    typed.setMany([[key, { packets: 2n, bytes: 128n, ifname: "lo" }]], {
      elemFlags: BPF_F_LOCK,
    }),
    1,
  );
  // Both elements, each with its own value: bpftool's and the one just rewritten.
  assert.deepEqual(
    new Map(typed.entries({ elemFlags: BPF_F_LOCK })),
    new Map([
      [{ saddr: 0x0100000a, dport: 80, proto: 6 }, { packets: 5n, bytes: 100n, ifname: "eth0" }],
      [key, { packets: 2n, bytes: 128n, ifname: "lo" }],
    ]),
  );

  // The whole BTF object libbpf loaded: the maps' definitions, the program, its sections.
  using btf = flows.btf()!;
  const kinds = new Set(btf.types.map((type) => type.kind));
  for (const kind of ["func", "func_proto", "var", "datasec", "typedef", "enum"] as const) {
    assert.ok(kinds.has(kind), `clang's BTF has ${kind}`);
  }
  assert.equal(btf.types[btf.typeId("verdict", "enum")]?.kind, "enum");
});

clangTest("bitfields, an unsigned enum and per-CPU values from clang's BTF", (system) => {
  using policies = system.openPinned(`${bpffs()}/maps/policies`);
  const typed = policies.typed();
  // clang 14 flags no enum signed: unsigned, as the kernel reads a clear kind_flag.
  assert.equal(
    typed.value.name,
    "struct policy { verdict: u32; mark: u12:0; prio: u4:4; weight: i16 }",
  );
  assert.deepEqual([...typed.entries()], [
    [0, { verdict: 0, mark: 0, prio: 0, weight: 0 }],
    [1, { verdict: 2, mark: 0x123, prio: 5, weight: -2 }],
  ]);
  typed.set(0, { verdict: 1, mark: 0xfff, prio: 15, weight: 300 });
  assert.deepEqual(
    policies.lookup(new Uint8Array(4)),
    new Uint8Array([1, 0, 0, 0, 0xff, 0xff, 44, 1]),
  );

  using counters = system.openPinned(`${bpffs()}/maps/counters`);
  const perCpu = counters.typedPerCpu();
  const cpus = system.possibleCpus();
  assert.deepEqual([...perCpu.entries()], [
    [0, Array(cpus).fill(0n)],
    [1, Array(cpus).fill(7n)],
  ]);
});
