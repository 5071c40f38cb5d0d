// A Worker that inserts the keys first .. first+count-1 into map `id`, each
// once, retrying a key that finds the map full; replies { inserted }. It
// loads bpfmap afresh on its own thread, with its own libc errno location.

import { BpfError, BpfMap } from "../../mod.ts";

interface WorkerScope {
  onmessage: ((event: { data: { id: number; first: number; count: number } }) => void) | null;
  postMessage(message: unknown): void;
}

const scope = globalThis as unknown as WorkerScope;
scope.onmessage = ({ data }) => {
  using map = BpfMap.fromId(data.id);
  const key = new Uint8Array(4);
  const view = new DataView(key.buffer);
  const value = new Uint8Array(map.valueStride).fill(0x22);
  let inserted = 0;
  let full = 0;
  for (let i = 0; i < data.count; i++) {
    view.setUint32(0, data.first + i, true);
    for (;;) {
      try {
        map.update(key, value);
        inserted++;
        break;
      } catch (error) {
        if (!(error instanceof BpfError && error.code === "E2BIG")) throw error;
        full++; // errno read on this thread: E2BIG, exactly
      }
    }
  }
  scope.postMessage({ inserted, full });
};
