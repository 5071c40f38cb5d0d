// Issues every bpf() command bpfmap knows once, for tests that watch the
// process from outside (strace). Argument: a directory on a mounted bpffs.

import process from "node:process";
import { BpfMap, Btf, listMapIds, specOf, spinLock, struct, u32 as u32Codec } from "../../mod.ts";

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
}
console.log("done");
