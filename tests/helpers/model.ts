/**
 * A plain TypeScript model of what the kernel does with a map, for the
 * differential fuzzer: the state each map type keeps, and the answer (value,
 * errno, count) every operation gets, as Linux 6.18 gives them.
 *
 * @module
 */

/** What an operation returned, as comparable data. */
export type Answer = unknown;

/** One map type's semantics. */
export interface Model {
  update(key: Uint8Array, value: Uint8Array, flags: number): Answer;
  lookup(key: Uint8Array): Answer;
  delete(key: Uint8Array): Answer;
  lookupAndDelete(key: Uint8Array): Answer;
  updateBatch(keys: Uint8Array[], values: Uint8Array[]): Answer;
  deleteBatch(keys: Uint8Array[]): Answer;
  /** Every element as `key=value` hex, in the order a walk must give (sorted where the kernel's is not specified). */
  contents(): string[];
  /** Whether a walk's order is specified (arrays: by index). */
  readonly ordered: boolean;
  /** What a lookup-and-delete drain answers and leaves. */
  drain(): Answer;
}

export const hex = (bytes: Uint8Array): string =>
  [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
const errno = (
  code: string,
  processed?: number,
) => (processed === undefined ? { errno: code } : { errno: code, processed });

/**
 * A batch update as the kernel applies it: element after element with
 * BPF_ANY, stopping at the first error with the index it stopped at.
 */
function updateInOrder(model: Model, keys: Uint8Array[], values: Uint8Array[]): Answer {
  for (const [i, key] of keys.entries()) {
    const value = values[i];
    if (value === undefined) {
      throw new RangeError(`a batch of ${keys.length} keys has ${values.length} values`);
    }
    const answer = model.update(key, value, 0);
    if (answer !== null) return errno((answer as { errno: string }).errno, i);
  }
  return keys.length;
}

/** hash, percpu_hash, lru_hash (the fuzzer keeps LRU maps far from full, so nothing is evicted). */
export class HashModel implements Model {
  readonly ordered = false;
  readonly #elements = new Map<string, Uint8Array>();
  readonly #maxEntries: number;
  readonly #evicts: boolean;

  constructor(maxEntries: number, evicts: boolean) {
    this.#maxEntries = maxEntries;
    this.#evicts = evicts;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number): Answer {
    const id = hex(key);
    const exists = this.#elements.has(id);
    if (flags === 1 && exists) return errno("EEXIST");
    if (flags === 2 && !exists) return errno("ENOENT");
    if (!exists && !this.#evicts && this.#elements.size >= this.#maxEntries) return errno("E2BIG");
    this.#elements.set(id, value.slice());
    return null;
  }

  lookup(key: Uint8Array): Answer {
    const value = this.#elements.get(hex(key));
    return value === undefined ? null : hex(value);
  }

  delete(key: Uint8Array): Answer {
    return this.#elements.delete(hex(key));
  }

  lookupAndDelete(key: Uint8Array): Answer {
    const value = this.lookup(key);
    this.#elements.delete(hex(key));
    return value;
  }

  updateBatch(keys: Uint8Array[], values: Uint8Array[]): Answer {
    return updateInOrder(this, keys, values);
  }

  deleteBatch(keys: Uint8Array[]): Answer {
    for (const [i, key] of keys.entries()) {
      if (!this.#elements.delete(hex(key))) return errno("ENOENT", i);
    }
    return keys.length;
  }

  contents(): string[] {
    return [...this.#elements].map(([key, value]) => `${key}=${hex(value)}`).sort();
  }

  drain(): Answer {
    const contents = this.contents();
    this.#elements.clear();
    return contents;
  }
}

/** array, percpu_array: every index exists from the start, zeroed; nothing can be deleted. */
export class ArrayModel implements Model {
  readonly ordered = true;
  readonly #values: Uint8Array[];

  constructor(maxEntries: number, valueStride: number) {
    this.#values = Array.from({ length: maxEntries }, () => new Uint8Array(valueStride));
  }

  #index(key: Uint8Array): number {
    return new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true);
  }

  update(key: Uint8Array, value: Uint8Array, flags: number): Answer {
    const index = this.#index(key);
    if (index >= this.#values.length) return errno("E2BIG");
    if (flags === 1) return errno("EEXIST");
    this.#values[index] = value.slice();
    return null;
  }

  lookup(key: Uint8Array): Answer {
    const value = this.#values[this.#index(key)];
    return value === undefined ? null : hex(value);
  }

  delete(): Answer {
    return errno("EINVAL");
  }

  lookupAndDelete(): Answer {
    return errno("ENOTSUPP");
  }

  updateBatch(keys: Uint8Array[], values: Uint8Array[]): Answer {
    return updateInOrder(this, keys, values);
  }

  deleteBatch(): Answer {
    return errno("ENOTSUPP", 0);
  }

  contents(): string[] {
    return this.#values.map((value, index) => {
      const key = new Uint8Array(new Uint32Array([index]).buffer);
      return `${hex(key)}=${hex(value)}`;
    });
  }

  drain(): Answer {
    return errno("ENOTSUPP", 0);
  }
}

/**
 * lpm_trie with IPv4 keys (`prefixlen` u32, 4 bytes of address): an element
 * is a prefix; updating it again keeps the newest key bytes; lookups find the
 * longest stored prefix that matches; a full trie answers ENOSPC.
 */
export class LpmModel implements Model {
  readonly ordered = false;
  readonly #elements = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  static prefix(key: Uint8Array): { length: number; bits: number } {
    const view = new DataView(key.buffer, key.byteOffset, 8);
    return { length: view.getUint32(0, true), bits: view.getUint32(4, false) };
  }

  static #mask(length: number): number {
    return length === 0 ? 0 : (0xffff_ffff << (32 - length)) >>> 0;
  }

  #id(key: Uint8Array): string {
    const { length, bits } = LpmModel.prefix(key);
    return `${length}/${(bits & LpmModel.#mask(length)) >>> 0}`;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number): Answer {
    if (LpmModel.prefix(key).length > 32) return errno("EINVAL");
    const id = this.#id(key);
    const exists = this.#elements.has(id);
    if (flags === 1 && exists) return errno("EEXIST");
    if (flags === 2 && !exists) return errno("ENOENT");
    if (!exists && this.#elements.size >= this.#maxEntries) return errno("ENOSPC");
    this.#elements.set(id, { key: key.slice(), value: value.slice() });
    return null;
  }

  lookup(key: Uint8Array): Answer {
    const { length, bits } = LpmModel.prefix(key);
    if (length > 32) return null;
    let best: { length: number; value: Uint8Array } | undefined;
    for (const element of this.#elements.values()) {
      const stored = LpmModel.prefix(element.key);
      const mask = LpmModel.#mask(stored.length);
      if (stored.length <= length && ((stored.bits ^ bits) & mask) === 0) {
        if (best === undefined || stored.length > best.length) {
          best = { length: stored.length, value: element.value };
        }
      }
    }
    return best === undefined ? null : hex(best.value);
  }

  delete(key: Uint8Array): Answer {
    return this.#elements.delete(this.#id(key));
  }

  lookupAndDelete(): Answer {
    return errno("ENOTSUPP");
  }

  updateBatch(keys: Uint8Array[], values: Uint8Array[]): Answer {
    return updateInOrder(this, keys, values);
  }

  deleteBatch(keys: Uint8Array[]): Answer {
    for (const [i, key] of keys.entries()) {
      if (!this.#elements.delete(this.#id(key))) return errno("ENOENT", i);
    }
    return keys.length;
  }

  contents(): string[] {
    return [...this.#elements.values()].map(({ key, value }) => `${hex(key)}=${hex(value)}`).sort();
  }

  drain(): Answer {
    return errno("ENOTSUPP", 0);
  }
}

/** queue (FIFO) and stack (LIFO); BPF_EXIST on a full one drops the oldest value. */
export class QueueModel {
  readonly #values: string[] = [];
  readonly #maxEntries: number;
  readonly #lifo: boolean;

  constructor(maxEntries: number, lifo: boolean) {
    this.#maxEntries = maxEntries;
    this.#lifo = lifo;
  }

  push(value: Uint8Array, flags: number): Answer {
    if (flags !== 0 && flags !== 2) return errno("EINVAL");
    if (this.#values.length >= this.#maxEntries) {
      if (flags !== 2) return errno("E2BIG");
      this.#values.shift();
    }
    this.#values.push(hex(value));
    return null;
  }

  peek(): Answer {
    if (this.#values.length === 0) return null;
    return this.#lifo ? this.#values.at(-1)! : this.#values[0];
  }

  pop(): Answer {
    if (this.#values.length === 0) return null;
    return this.#lifo ? this.#values.pop()! : this.#values.shift()!;
  }
}
