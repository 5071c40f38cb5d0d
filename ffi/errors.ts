/**
 * The errors the kernel's answers become.
 *
 * @module
 */

import { errnoDescription, errnoName } from "./errno.ts";

/**
 * A `bpf()` call the kernel failed, with its errno.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfError, BpfMap } from "../mod.ts";
 *
 * assert.throws(() => BpfMap.fromId(0x7fff_fff0), {
 *   name: "BpfError",
 *   errno: 2,
 *   code: "ENOENT",
 *   op: "BPF_MAP_GET_FD_BY_ID",
 *   message: "BPF_MAP_GET_FD_BY_ID failed: ENOENT (No such file or directory): map id 2147483632",
 * });
 * assert.equal(new BpfError("BPF_MAP_LOOKUP_BATCH", 524).code, "ENOTSUPP"); // kernel-internal
 * ```
 */
export class BpfError extends Error {
  /** The errno the kernel returned, e.g. 2. */
  readonly errno: number;
  /** Its symbolic name, e.g. `"ENOENT"`, or `"ENOTSUPP"` for the kernel-internal 524. */
  readonly code: string;
  /** The command that failed, e.g. `"BPF_MAP_LOOKUP_BATCH"`. */
  readonly op: string;
  /** What the message says after the errno, if anything: the object, a kernel log's last lines. */
  readonly detail: string | undefined;

  constructor(op: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${op} failed: ${code} (${errnoDescription(errno)})${detail ? `: ${detail}` : ""}`);
    this.name = "BpfError";
    this.errno = errno;
    this.code = code;
    this.op = op;
    this.detail = detail;
  }
}

/**
 * A batch call that failed part-way. `processed` is how many elements the
 * kernel handled before the failure (the `count` it wrote back); for lookup
 * batches, `keys` and `values` hold those elements, so that nothing a
 * lookup-and-delete batch removed is lost.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 2 });
 * const three = new Uint8Array(new Uint32Array([1, 2, 3]).buffer);
 * assert.throws(() => map.updateBatch(three, three), {
 *   name: "BatchError",
 *   code: "E2BIG", // the map is full...
 *   op: "BPF_MAP_UPDATE_BATCH",
 *   processed: 2, // ...after the first two
 * });
 * const two = three.subarray(4, 8);
 * assert.deepEqual(map.lookup(two), two); // written before the failure
 * ```
 */
export class BatchError extends BpfError {
  /** Elements handled before the failure. */
  readonly processed: number;
  /** For lookup batches: the keys the kernel copied out before the failure. */
  readonly keys: Uint8Array | undefined;
  /** For lookup batches: the values the kernel copied out before the failure. */
  readonly values: Uint8Array | undefined;

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
