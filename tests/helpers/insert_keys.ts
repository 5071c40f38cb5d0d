/**
 * The concurrent writers' loop: insert u32 keys first .. first+count-1, each
 * once with one call, retrying a key that finds the map full.
 *
 * @module
 */

import { BpfError, type BpfMap } from "../../mod.ts";

/** Inserts the keys; returns how many went in and how many E2BIG answers were retried. */
export function insertKeys(
  map: BpfMap,
  first: number,
  count: number,
  fill: number,
): { inserted: number; full: number } {
  const key = new Uint8Array(4);
  const view = new DataView(key.buffer);
  const value = new Uint8Array(map.valueStride).fill(fill);
  let inserted = 0;
  let full = 0;
  for (let i = 0; i < count; i++) {
    view.setUint32(0, first + i, true);
    for (;;) {
      try {
        map.update(key, value);
        inserted++;
        break;
      } catch (error) {
        if (!(error instanceof BpfError && error.code === "E2BIG")) throw error;
        full++;
      }
    }
  }
  return { inserted, full };
}
