/**
 * Little-endian byte helpers for tests.
 *
 * @module
 */

/** Packs u32 values back to back. */
export function u32(...values: number[]): Uint8Array {
  return new Uint8Array(new Uint32Array(values).buffer);
}

/** Packs u64 values back to back. */
export function u64(...values: (number | bigint)[]): Uint8Array {
  return new Uint8Array(new BigUint64Array(values.map(BigInt)).buffer);
}

/** Packs i32 values back to back. */
export function i32(...values: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(values).buffer);
}

/** Reads every u32 of `bytes`. */
export function readU32s(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getUint32(i * 4, true));
}

/** Reads every u64 of `bytes` as numbers. */
export function readU64s(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from(
    { length: bytes.byteLength / 8 },
    (_, i) => Number(view.getBigUint64(i * 8, true)),
  );
}

/** Reads every i64 of `bytes` as numbers. */
export function readI64s(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from(
    { length: bytes.byteLength / 8 },
    (_, i) => Number(view.getBigInt64(i * 8, true)),
  );
}

/** Reads one u32. */
export function readU32(bytes: Uint8Array | undefined, index = 0): number {
  if (bytes === undefined) throw new Error("expected bytes, got undefined");
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(index * 4, true);
}
