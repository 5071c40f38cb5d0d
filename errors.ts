/**
 * The errors the kernel's answers become.
 *
 * @module
 */

import { errnoDescription, errnoName } from "./ffi/errno.ts";

/**
 * A `bpf()` call the kernel failed, with its errno.
 *
 * @example
 * ```ts ignore
 * import { BpfError, BpfMap } from "./mod.ts";
 * try {
 *   BpfMap.fromId(0x7fff_ffff);
 * } catch (error) {
 *   if (error instanceof BpfError && error.code === "ENOENT") console.log("no such map");
 * }
 * ```
 */
export class BpfError extends Error {
  /** The errno the kernel returned, e.g. 2. */
  readonly errno: number;
  /** Its symbolic name, e.g. `"ENOENT"`, or `"ENOTSUPP"` for the kernel-internal 524. */
  readonly code: string;
  /** The command that failed, e.g. `"BPF_MAP_LOOKUP_BATCH"`. */
  readonly op: string;

  constructor(op: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${op} failed: ${code} (${errnoDescription(errno)})${detail ? `: ${detail}` : ""}`);
    this.name = "BpfError";
    this.errno = errno;
    this.code = code;
    this.op = op;
  }
}

/**
 * A batch call that failed part-way. `processed` is how many elements the
 * kernel handled before the failure (the `count` it wrote back); for lookup
 * batches, `keys` and `values` hold those elements, so that nothing a
 * lookup-and-delete batch removed is lost.
 *
 * @example
 * ```ts ignore
 * try {
 *   map.updateBatch(keys, values);
 * } catch (error) {
 *   if (error instanceof BatchError) console.log(`${error.processed} elements written`);
 * }
 * ```
 */
export class BatchError extends BpfError {
  /** Elements handled before the failure. */
  readonly processed: number;
  /** For lookup batches: the keys the kernel copied out before the failure. */
  readonly keys?: Uint8Array;
  /** For lookup batches: the values the kernel copied out before the failure. */
  readonly values?: Uint8Array;

  constructor(
    op: string,
    errno: number,
    processed: number,
    elements?: { keys: Uint8Array; values: Uint8Array },
    detail?: string,
  ) {
    super(op, errno, `${processed} element(s) processed${detail ? `; ${detail}` : ""}`);
    this.name = "BatchError";
    this.processed = processed;
    this.keys = elements?.keys;
    this.values = elements?.values;
  }
}
