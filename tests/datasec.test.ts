// Global data (.bss, .data, .rodata) of a clang-built program
// (tests/bpf/maps.bpf.c, loaded by bpftool): libbpf makes each section a
// one-element array whose BTF value type is the section's DATASEC, and
// typed() reads it as an object of the section's variables and writes it back
// where the kernel allows (not .rodata: libbpf freezes it). Recorded live, so
// it replays anywhere.

import assert from "node:assert/strict";
import { BpfError } from "../mod.ts";
import { clangTests } from "./helpers/clang_object.ts";
import { thrown } from "./helpers/live.ts";

const { clangTest, bpffs } = clangTests(import.meta.url, "bpfmap-datasec-");

clangTest(".data: typed() reads the section's variables and writes them back", (system) => {
  using data = system.openPinned(`${bpffs()}/maps/maps_data`);
  assert.equal(data.btfIds.keyTypeId, 0); // libbpf gives global data no key type
  const typed = data.typed();
  assert.equal(typed.key.name, "u32"); // an array's index
  assert.equal(typed.value.name, "datasec .data { sample_rate: u32; banner: char[8] }");
  // The initial values clang compiled in, as bpftool prints them.
  assert.deepEqual([...typed.entries()], [[0, { sample_rate: 100, banner: "bpfmap" }]]);
  typed.set(0, { sample_rate: 7, banner: "typed" });
  assert.deepEqual(typed.get(0), { sample_rate: 7, banner: "typed" });
  // Each variable at its offset: sample_rate at 0, banner at 4.
  assert.deepEqual(
    [...data.lookup(new Uint8Array(4))!],
    [7, 0, 0, 0, ...new TextEncoder().encode("typed"), 0, 0, 0],
  );
  // A section is written whole: a variable left out is refused before any call.
  const error = thrown(() => typed.set(0, { sample_rate: 1 }));
  assert.ok(error instanceof TypeError);
  assert.equal(error.message, "value: missing field banner (char[8])");
  assert.deepEqual(typed.get(0), { sample_rate: 7, banner: "typed" });
});

clangTest(".bss: zeroed variables, a struct among them, written back", (system) => {
  using bss = system.openPinned(`${bpffs()}/maps/maps_bss`);
  const typed = bss.typed();
  assert.equal(
    typed.value.name,
    "datasec .bss { packets_seen: u64; last_flow: struct flow_key { saddr: u32; dport: u16be; proto: u8 } }",
  );
  assert.deepEqual(typed.get(0), {
    packets_seen: 0n,
    last_flow: { saddr: 0, dport: 0, proto: 0 },
  });
  const value = { packets_seen: 1n << 40n, last_flow: { saddr: 0x0100000a, dport: 443, proto: 6 } };
  typed.set(0, value);
  assert.deepEqual(typed.get(0), value);
  assert.deepEqual(typed.getMany([0, 1]), [value, undefined]); // one element: index 1 is not there
});

clangTest(".rodata: read as the section's variables; the frozen map refuses writes", (system) => {
  using rodata = system.openPinned(`${bpffs()}/maps/maps_rodata`);
  assert.equal(rodata.fdInfo().frozen, "1"); // libbpf froze it after loading
  const typed = rodata.typed();
  assert.equal(typed.value.name, "datasec .rodata { http_port: u16; default_verdict: u32 }");
  assert.deepEqual(typed.get(0), { http_port: 80, default_verdict: 1 }); // DROP
  const error = thrown(() => typed.set(0, { http_port: 8080, default_verdict: 0 }));
  assert.ok(error instanceof BpfError, String(error));
  assert.equal(error.code, "EPERM");
  assert.equal(error.op, "BPF_MAP_UPDATE_ELEM");
  assert.deepEqual(typed.get(0), { http_port: 80, default_verdict: 1 });
});
