/**
 * Stable names for what differs from run to run: file descriptors become
 * handles (1, 2, ... in the order the kernel hands them out), map, program,
 * link and BTF ids become virtual ids (1, 2, ... per kind, in the order the kernel reports
 * them), and paths under a run's own folders become placeholders
 * (`${BPFFS}/map` for `/tmp/bpffs-x1y2/map`), so that recording the same test
 * twice gives the same transcript.
 *
 * @module
 */

import { mapType } from "../ffi/map_types.ts";

import type { IdKind } from "../ffi/commands.ts";

/** The kinds of kernel object ids a transcript renames (each kind has its own id space). */
export type { IdKind };

/**
 * Folders that differ from run to run, by placeholder name: `{ BPFFS: dir }`
 * writes `dir` as `${BPFFS}` in a transcript's paths.
 */
export type PathPlaceholders = Readonly<Record<string, string>>;

/**
 * Checks placeholders: names of capitals, digits and `_`; absolute folders.
 * Returns them longest folder first (a folder inside another wins), without
 * trailing slashes.
 */
export function checkPaths(paths: PathPlaceholders): [string, string][] {
  if (paths === null || typeof paths !== "object") {
    throw new TypeError(`paths must be an object of NAME: folder, got ${String(paths)}`);
  }
  return Object.entries(paths).map(([name, dir]): [string, string] => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) {
      throw new TypeError(`paths: ${JSON.stringify(name)} is not a NAME (A-Z, 0-9, _)`);
    }
    if (typeof dir !== "string" || !dir.startsWith("/") || dir.replace(/\/+$/, "") === "") {
      throw new TypeError(`paths.${name}: expected an absolute folder, got ${JSON.stringify(dir)}`);
    }
    return [name, dir.replace(/\/+$/, "")];
  }).sort(([, a], [, b]) => b.length - a.length);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How one side of a run names fds, ids and paths. */
export abstract class Identities {
  readonly #mapTypes = new Map<number, number>();
  readonly #paths: [string, string][];

  constructor(paths: PathPlaceholders = {}) {
    this.#paths = checkPaths(paths);
  }

  /**
   * A path's bytes (NUL-terminated, as the kernel reads them) as a transcript
   * writes them: a run's folder replaced by its placeholder.
   */
  pathIn(bytes: Uint8Array): Uint8Array {
    if (this.#paths.length === 0) return bytes;
    const end = bytes.indexOf(0);
    const path = decoder.decode(end === -1 ? bytes : bytes.subarray(0, end));
    for (const [name, dir] of this.#paths) {
      if (path === dir || path.startsWith(dir + "/")) {
        const rest = end === -1 ? new Uint8Array(0) : bytes.subarray(end);
        const head = encoder.encode("${" + name + "}" + path.slice(dir.length));
        const out = new Uint8Array(head.byteLength + rest.byteLength);
        out.set(head);
        out.set(rest, head.byteLength);
        return out;
      }
    }
    return bytes;
  }

  /** The handle of an fd the code passed, or `"foreign"` for one bpfmap never got from the kernel. */
  abstract handleOf(fd: number): number | "foreign";
  /** The id as the transcript writes it, for an id the code passed. */
  abstract idIn(id: number, kind: IdKind): number;
  /** The id as the transcript writes it, for an id the kernel returned. */
  abstract idOut(id: number, kind: IdKind): number;

  /** Remembers what type of map a handle is, as the calls reveal it. */
  learnMapType(handle: number, type: number): void {
    this.#mapTypes.set(handle, type);
  }

  /**
   * Whether the map behind a handle takes fds as values: inner maps (a map
   * of maps), programs (a prog array), perf events (a perf event array),
   * sockets, cgroups.
   */
  holdsFds(handle: number | "foreign"): boolean {
    const holds = this.#holds(handle);
    return holds !== undefined && holds !== "bytes";
  }

  /**
   * The kind of id the kernel answers a lookup of the map behind a handle
   * with, in place of the fd stored: a map of maps' inner map ids, a prog
   * array's program ids. `undefined` for values that are no ids.
   */
  valueIds(handle: number | "foreign"): IdKind | undefined {
    const holds = this.#holds(handle);
    return holds === "maps" ? "map" : holds === "programs" ? "prog" : undefined;
  }

  #holds(handle: number | "foreign"): string | undefined {
    const type = handle === "foreign" ? undefined : this.#mapTypes.get(handle);
    return type === undefined ? undefined : mapType(type).holds;
  }
}

/**
 * The live side of a recording or verifying run: real fds and ids, mapped to
 * handles and virtual ids as the kernel hands them out.
 */
export class LiveIdentities extends Identities {
  readonly #handles = new Map<number, number>();
  readonly #ids: Record<IdKind, Map<number, number>> = {
    map: new Map(),
    btf: new Map(),
    prog: new Map(),
    link: new Map(),
  };
  #nextHandle = 1;

  /** Gives an fd the kernel returned the next handle. */
  newHandle(fd: number): number {
    const handle = this.#nextHandle++;
    this.#handles.set(fd, handle);
    return handle;
  }

  /** Forgets a closed fd; returns its handle. */
  closed(fd: number): number | "foreign" {
    const handle = this.handleOf(fd);
    this.#handles.delete(fd);
    return handle;
  }

  handleOf(fd: number): number | "foreign" {
    return this.#handles.get(fd) ?? "foreign";
  }

  idIn(id: number, kind: IdKind): number {
    // An id the kernel never reported (a literal in the code) stays as it is.
    return this.#ids[kind].get(id) ?? id;
  }

  idOut(id: number, kind: IdKind): number {
    if (id === 0) return 0;
    const ids = this.#ids[kind];
    let virtual = ids.get(id);
    if (virtual === undefined) {
      virtual = ids.size + 1;
      ids.set(id, virtual);
    }
    return virtual;
  }
}

/** The fd the player hands out for a handle: far above what a test opens for itself. */
export const REPLAY_FD_BASE = 1000;

/** The replay side: fds are `REPLAY_FD_BASE + handle`, ids are already virtual. */
export class ReplayIdentities extends Identities {
  readonly #open = new Set<number>();

  /** The fd to give the code for a handle the transcript returned. */
  fdFor(handle: number): number {
    this.#open.add(handle);
    return REPLAY_FD_BASE + handle;
  }

  /** Forgets a closed fd; returns its handle. */
  closed(fd: number): number | "foreign" {
    const handle = this.handleOf(fd);
    if (handle !== "foreign") this.#open.delete(handle);
    return handle;
  }

  handleOf(fd: number): number | "foreign" {
    const handle = fd - REPLAY_FD_BASE;
    return this.#open.has(handle) ? handle : "foreign";
  }

  idIn(id: number): number {
    return id;
  }

  idOut(id: number): number {
    return id;
  }
}
