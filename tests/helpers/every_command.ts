// Issues every bpf() command bpfmap knows once, for tests that watch the
// process from outside (strace). Argument: a directory on a mounted bpffs.

import process from "node:process";
import {
  BpfMap,
  Btf,
  Link,
  listBtfIds,
  listLinkIds,
  listMapIds,
  listProgramIds,
  Program,
  specOf,
  spinLock,
  struct,
  u32 as u32Codec,
} from "../../mod.ts";
import { lockMachine } from "./machine_lock.ts";

const bpffs = process.argv.at(-1)!;
const u32 = (...values: number[]) => new Uint8Array(new Uint32Array(values).buffer);
{
  using map = BpfMap.create({
    type: "hash",
    keySize: 4,
    valueSize: 4,
    maxEntries: 8,
    name: "every",
  });
  map.update(u32(1), u32(1));
  map.lookup(u32(1));
  map.nextKey();
  map.lookupAndDelete(u32(1));
  map.delete(u32(1));
  map.updateBatch(u32(1, 2), u32(1, 2));
  map.lookupBatch({ count: 8 });
  map.deleteBatch(u32(1));
  map.lookupAndDeleteBatch({ count: 8 });
  map.pin(`${bpffs}/every`);
  using pinned = BpfMap.openPinned(`${bpffs}/every`);
  using byId = BpfMap.fromId(pinned.id);
  listMapIds();
  byId.freeze();
}
{
  // BTF_LOAD, then BTF_GET_FD_BY_ID and OBJ_GET_INFO_BY_FD with a bpf_btf_info.
  const value = struct({ lock: spinLock, count: u32Codec });
  using locked = BpfMap.create(
    specOf({ type: "array", key: u32Codec, value, maxEntries: 1, btf: true }),
  );
  using btf = locked.btf()!;
  Btf.fromId(btf.id).close();
  listBtfIds();
}
{
  // PROG_LOAD, TEST_RUN, the program ids and fds; a raw tracepoint; an XDP link on loopback
  // (its one XDP slot: taken in turn with any other run on the machine), updated and detached.
  const returns = (value: number) =>
    new Uint8Array([0xb7, 0, 0, 0, value, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]); // r0 = value; exit
  using xdp = Program.load({ type: "xdp", instructions: returns(2), license: "GPL" });
  using other = Program.load({ type: "xdp", instructions: returns(2), license: "GPL" });
  xdp.testRun({ data: new Uint8Array(64) });
  listProgramIds();
  Program.fromId(xdp.id).close();
  using tracer = Program.load({ type: "raw_tracepoint", instructions: returns(0), license: "GPL" });
  tracer.attachRawTracepoint("sys_enter").close();
  const unlock = lockMachine("xdp-lo");
  try {
    using link = xdp.attachXdp(1, { flags: 2 }); // generic XDP, as loopback has it
    link.update(other);
    listLinkIds();
    Link.fromId(link.id).close();
    link.detach();
  } finally {
    unlock();
  }
}
console.log("done");
