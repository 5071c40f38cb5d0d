/**
 * A map-in-map with one inner array map: what the element and typed tests of
 * `hash_of_maps` and `array_of_maps` start from.
 *
 * @module
 */

import type { BpfMap, BpfSystem } from "../../mod.ts";

/** An outer map of `type`, its template, and an inner map to store in it; disposed together. */
export interface MapInMap extends Disposable {
  outer: BpfMap;
  inner: BpfMap;
}

/** Creates an outer map of 4 slots (u32 keys) whose inner maps are 1-slot u32 arrays. */
export function createMapInMap(
  sys: BpfSystem,
  type: "hash_of_maps" | "array_of_maps",
): MapInMap {
  const array = () => sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
  const template = array();
  const inner = array();
  const outer = sys.createMap({
    type,
    keySize: 4,
    valueSize: 4,
    maxEntries: 4,
    innerMap: template,
  });
  return {
    outer,
    inner,
    [Symbol.dispose]() {
      outer.close();
      inner.close();
      template.close();
    },
  };
}
