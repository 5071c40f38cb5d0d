// A Worker that inserts the keys first .. first+count-1 into map `id`, each
// once, retrying a key that finds the map full; replies { inserted, full }.
// It loads bpfmap afresh on its own thread, with its own libc errno location,
// so every E2BIG it retries was read from this thread's errno.

import { BpfMap } from "../../mod.ts";
import { insertKeys } from "./insert_keys.ts";

interface WorkerScope {
  onmessage: ((event: { data: { id: number; first: number; count: number } }) => void) | null;
  postMessage(message: unknown): void;
}

const scope = globalThis as unknown as WorkerScope;
scope.onmessage = ({ data }) => {
  using map = BpfMap.fromId(data.id);
  scope.postMessage(insertKeys(map, data.first, data.count, 0x22));
};
