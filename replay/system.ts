/**
 * `openSystem()`: the root every map hangs off. A live system talks to the
 * kernel; a recording one also writes down every call into a transcript; a
 * replaying one answers from a transcript with no FFI at all; a verifying
 * one runs live and compares every call with the transcript.
 *
 * @module
 */

import { appendFileSync, existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Btf, type BtfLoadOptions } from "../btf/btf.ts";
import type { BtfType } from "../btf/types.ts";
import { kernelArch } from "../ffi/arch.ts";
import type { SyscallBackend } from "../ffi/backend.ts";
import { Kernel, POSSIBLE_CPUS_PATH } from "../ffi/kernel.ts";
import { currentPlatform, openLiveBackend, readEnv } from "../ffi/live.ts";
import { countCpuList } from "../ffi/percpu.ts";
import { BpfMap, type MapSpec, type OpenPinnedOptions } from "../maps/bpf_map.ts";
import { listMapIds } from "../maps/ids.ts";
import { Link, listLinkIds, trackLinks } from "../programs/link.ts";
import { BpfObject, type BpfObjectOptions } from "../programs/object_loader.ts";
import { listProgramIds, Program, type ProgramSpec } from "../programs/program.ts";
import { BlobStore } from "./blobs.ts";
import { checkPaths, type PathPlaceholders } from "./identities.ts";
import { ReplayBackend, type ReplayFault } from "./player.ts";
import { RecordingBackend } from "./recorder.ts";
import type { SessionBackend } from "./session.ts";
import { parseTranscript, type TranscriptHost } from "./transcript.ts";
import { VerifyingBackend } from "./verifier.ts";

/** How a system reaches the kernel. `"auto"` replays a transcript that exists and records one that does not. */
export type TranscriptMode = "live" | "record" | "replay" | "verify" | "auto";

/** Options of {@linkcode openSystem}. */
export interface SystemOptions {
  /** The transcript file to record into, replay or verify against. */
  transcript?: string | undefined;
  /** Default: `"auto"` with a transcript, `"live"` without. */
  mode?: TranscriptMode | undefined;
  /**
   * Whether `BPFMAP_TRANSCRIPT` may override `mode` (default true). A command
   * line that says `--record` or `--replay` means it, whatever the environment.
   */
  modeFromEnvironment?: boolean | undefined;
  /** Replay only: calls to fail with an errno, deterministically (fault injection). */
  faults?: readonly ReplayFault[] | undefined;
  /**
   * Folders of this run's own, by placeholder name (`{ BPFFS: dir }`): paths
   * under `dir` are recorded as `${BPFFS}/...`, and a replay or verify run
   * reads `${BPFFS}` as its own `dir`, so that runs pinning in different
   * folders (a fresh bpffs each) share one transcript.
   */
  paths?: PathPlaceholders | undefined;
  /**
   * Record only: a folder where the transcript's blobs (bytes over 4 KiB: the
   * kernel's BTF, instructions, large batches) are kept once for every
   * transcript recorded with it, instead of in each transcript (see `BlobStore`).
   */
  blobStore?: string | undefined;
}

/** Overrides the mode of every system of a run that has a transcript: `live`, `record`, `replay` or `verify`. */
export const TRANSCRIPT_ENV = "BPFMAP_TRANSCRIPT";
/** If set, the path of a file every opened transcript's path is appended to (for unused-fixture reports). */
export const FIXTURE_LOG_ENV = "BPFMAP_FIXTURE_LOG";
const OSRELEASE_PATH = "/proc/sys/kernel/osrelease";

/**
 * The root of every map: all a map does goes through its system's kernel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openSystem } from "../mod.ts";
 *
 * await using system = await openSystem();
 * const map = system.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 4 });
 * assert.equal(map.lookup(new Uint8Array(4))?.byteLength, 4);
 * ```
 */
export class BpfSystem implements AsyncDisposable {
  /** What this system does: never `"auto"`, which resolves to replay or record. */
  readonly mode: "live" | "record" | "replay" | "verify";
  /** The kernel its maps use. */
  readonly kernel: Kernel;
  /** The transcript path, if any. */
  readonly transcript: string | undefined;
  readonly #maps: BpfMap[] = [];
  readonly #btfs: Btf[] = [];
  readonly #programs: Program[] = [];
  readonly #objects: BpfObject[] = [];
  /** Every link opened on this system's kernel (attached, by id, by pin): see `trackLinks`. */
  readonly #links: Link[] = [];
  readonly #host: TranscriptHost | undefined;
  #closed = false;
  #failed = false;

  constructor(
    mode: "live" | "record" | "replay" | "verify",
    backend: SyscallBackend,
    transcript?: string,
    host?: TranscriptHost,
  ) {
    this.mode = mode;
    this.kernel = new Kernel(backend, { closesLeakedFds: mode === "live" });
    this.transcript = transcript;
    this.#host = host;
    trackLinks(this.kernel, (link) => this.#links.push(link));
  }

  /** Creates a map (see `BpfMap.create`). */
  createMap(spec: MapSpec): BpfMap {
    return this.#track(BpfMap.create(spec, this.kernel));
  }

  /** Opens a pinned map (see `BpfMap.openPinned`). */
  openPinned(path: string, opts?: OpenPinnedOptions): BpfMap {
    return this.#track(BpfMap.openPinned(path, opts, this.kernel));
  }

  /** Opens a map by id (see `BpfMap.fromId`). */
  mapFromId(id: number): BpfMap {
    return this.#track(BpfMap.fromId(id, this.kernel));
  }

  /** Adopts a map fd this process holds (see `BpfMap.fromFd`: the map then owns it). */
  mapFromFd(fd: number): BpfMap {
    return this.#track(BpfMap.fromFd(fd, this.kernel));
  }

  /** Opens the one map with this name (see `BpfMap.fromName`). */
  mapFromName(name: string): BpfMap {
    return this.#track(BpfMap.fromName(name, this.kernel));
  }

  /** Loads BTF types (see `Btf.load`); closed with the system if still open. */
  loadBtf(types: readonly BtfType[] | Uint8Array, opts?: BtfLoadOptions): Btf {
    return this.#trackBtf(Btf.load(types, opts, this.kernel));
  }

  /** Opens a BTF object by id (see `Btf.fromId`); closed with the system if still open. */
  btfFromId(id: number): Btf {
    return this.#trackBtf(Btf.fromId(id, this.kernel));
  }

  /** Loads a program (see `Program.load`); closed with the system if still open. */
  loadProgram(spec: ProgramSpec): Program {
    return this.#trackProgram(Program.load(spec, this.kernel));
  }

  /**
   * Opens an object file on this system's kernel (see `BpfObject.open`), to
   * `load()` once its programs' `autoload` and `.rodata` are set; closed
   * with the system.
   */
  openObject(source: Uint8Array | string, opts: Omit<BpfObjectOptions, "kernel"> = {}): BpfObject {
    const object = BpfObject.open(source, { ...opts, kernel: this.kernel });
    this.#objects.push(object);
    return object;
  }

  /** Opens and loads an object file (see `BpfObject`); closed with the system. */
  loadObject(source: Uint8Array | string, opts: Omit<BpfObjectOptions, "kernel"> = {}): BpfObject {
    return this.openObject(source, opts).load();
  }

  /** Opens a program by id (see `Program.fromId`); closed with the system if still open. */
  programFromId(id: number): Program {
    return this.#trackProgram(Program.fromId(id, this.kernel));
  }

  /** Adopts a program fd this process holds (see `Program.fromFd`). */
  programFromFd(fd: number): Program {
    return this.#trackProgram(Program.fromFd(fd, this.kernel));
  }

  /** Opens a pinned program (see `Program.openPinned`); closed with the system if still open. */
  openPinnedProgram(path: string): Program {
    return this.#trackProgram(Program.openPinned(path, this.kernel));
  }

  /** Opens a link by id (see `Link.fromId`); closed with the system if still open. */
  linkFromId(id: number): Link {
    return Link.fromId(id, this.kernel);
  }

  /** Opens a pinned link (see `Link.openPinned`); closed with the system if still open. */
  openPinnedLink(path: string): Link {
    return Link.openPinned(path, this.kernel);
  }

  /** Every link id on the system (see `listLinkIds`). */
  listLinkIds(): number[] {
    return listLinkIds(this.kernel);
  }

  /** Every program id on the system (see `listProgramIds`). */
  listProgramIds(): number[] {
    return listProgramIds(this.kernel);
  }

  /** Every map id on the system (see `listMapIds`). */
  listMapIds(): number[] {
    return listMapIds(this.kernel);
  }

  /** The possible CPUs of the system (of the recording host, in replay). */
  possibleCpus(): number {
    return this.kernel.possibleCpus();
  }

  /**
   * Closes the maps still open, in the order they were opened, then: record
   * writes the transcript (atomically); replay fails if calls were left
   * unplayed; verify fails with every difference from the transcript.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Links first (closing the last fd of one detaches it), then programs: a program holds
    // its maps, so they are freed as their own fds close.
    for (const link of this.#links) link.close();
    for (const program of this.#programs) program.close();
    for (const object of this.#objects) object.close();
    for (const map of this.#maps) map.close();
    for (const btf of this.#btfs) btf.close();
    // Only recording, verifying and replaying backends have a finish(): a live one has no transcript.
    const backend = this.kernel.backend as Partial<SessionBackend>;
    await backend.finish?.({
      transcript: this.transcript!,
      host: this.#host!,
      failed: this.#failed,
    });
  }

  /**
   * Runs `fn` on this system, then closes it. If `fn` throws, its error is
   * the one thrown: a recording is not written (half a run is no reference,
   * and an older transcript stays), and replay's and verify's complaints at
   * close (calls left unplayed, differences) are not thrown over it. What
   * `transcriptTests` runs every test in; `await using` cannot know that its
   * block failed, so it records whatever ran.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { existsSync, mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { openSystem } from "../mod.ts";
   *
   * const transcript = join(mkdtempSync(join(tmpdir(), "bpfmap-")), "session.json");
   * const system = await openSystem({ transcript, mode: "record", modeFromEnvironment: false });
   * await assert.rejects(system.run((s) => {
   *   s.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
   *   throw new Error("the test failed half-way");
   * }), /the test failed half-way/);
   * assert.equal(existsSync(transcript), false);
   * ```
   */
  async run<T>(fn: (system: this) => T | Promise<T>): Promise<T> {
    let value: T;
    try {
      value = await fn(this);
    } catch (error) {
      this.#failed = true;
      // The error to show is fn's; closing after it must not replace it.
      await this.close().catch(() => {});
      throw error;
    }
    await this.close();
    return value;
  }

  /** Closes the system at the end of an `await using` block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #track(map: BpfMap): BpfMap {
    this.#maps.push(map);
    return map;
  }

  #trackProgram(program: Program): Program {
    this.#programs.push(program);
    return program;
  }

  #trackBtf(btf: Btf): Btf {
    this.#btfs.push(btf);
    return btf;
  }
}

/**
 * Opens a system. With a transcript and mode `"auto"` (the default when a
 * transcript is given), it replays the transcript if the file exists, and
 * records it if not and live BPF is available. `BPFMAP_TRANSCRIPT` overrides
 * the mode for a whole run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { openSystem } from "../mod.ts";
 *
 * // Record a session, then replay it: the same calls get the same answers, with no kernel.
 * const transcript = join(mkdtempSync(join(tmpdir(), "bpfmap-")), "session.json");
 * for (const mode of ["record", "replay"] as const) {
 *   await using system = await openSystem({ transcript, mode, modeFromEnvironment: false });
 *   assert.equal(system.mode, mode);
 *   using map = system.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 });
 *   map.update(new Uint8Array([1, 0, 0, 0]), new Uint8Array([7, 0, 0, 0]));
 *   assert.deepEqual(map.lookup(new Uint8Array([1, 0, 0, 0])), new Uint8Array([7, 0, 0, 0]));
 * }
 * ```
 */
export async function openSystem(opts: SystemOptions = {}): Promise<BpfSystem> {
  const transcript = opts.transcript === undefined ? undefined : resolve(opts.transcript);
  const mode = chooseMode(opts, transcript);
  const paths = opts.paths ?? {};
  checkPaths(paths);
  if (opts.faults !== undefined && opts.faults.length > 0 && mode !== "replay") {
    throw new TypeError(`opts.faults: faults are injected by the player; mode ${mode} has none`);
  }
  if (mode === "live") return new BpfSystem("live", openLiveBackend());
  const path = transcript!;
  const log = readEnv(FIXTURE_LOG_ENV);
  if (log) appendFileSync(log, path + "\n");
  if (mode === "replay") {
    const parsed = parseTranscript(await readTranscriptFile(path), path);
    return new BpfSystem(
      "replay",
      new ReplayBackend(parsed, path, opts.faults, paths),
      path,
      parsed.host,
    );
  }
  const live = openLiveBackend();
  const host = liveHost(live);
  if (mode === "verify") {
    const parsed = parseTranscript(await readTranscriptFile(path), path);
    const verifier = new VerifyingBackend(live, parsed, paths);
    verifier.readTextFile(POSSIBLE_CPUS_PATH);
    return new BpfSystem("verify", verifier, path, host);
  }
  const store = opts.blobStore === undefined ? undefined : new BlobStore(opts.blobStore);
  const recorder = new RecordingBackend(live, paths, store);
  recorder.readTextFile(POSSIBLE_CPUS_PATH);
  return new BpfSystem("record", recorder, path, host);
}

function chooseMode(
  opts: SystemOptions,
  transcript: string | undefined,
): "live" | "record" | "replay" | "verify" {
  const forced = opts.modeFromEnvironment === false ? undefined : readEnv(TRANSCRIPT_ENV);
  if (
    forced !== undefined && forced !== ""
    && !["live", "record", "replay", "verify"].includes(forced)
  ) {
    throw new TypeError(`${TRANSCRIPT_ENV}=${forced}: expected live, record, replay or verify`);
  }
  // The override is for systems that have a transcript; one without stays live.
  const mode = transcript === undefined ? opts.mode ?? "live" : (forced || opts.mode) ?? "auto";
  if (!["live", "record", "replay", "verify", "auto"].includes(mode)) {
    throw new TypeError(
      `opts.mode: ${JSON.stringify(mode)} is not live, record, replay, verify or auto`,
    );
  }
  if (mode === "live") return "live";
  if (transcript === undefined) throw new TypeError(`mode ${mode} needs opts.transcript`);
  if (mode !== "auto") return mode as "record" | "replay" | "verify";
  if (existsSync(transcript)) return "replay";
  try {
    openLiveBackend();
  } catch (error) {
    throw new Error(
      `bpfmap: no transcript at ${transcript}, and live BPF is unavailable to record one: ${
        (error as Error).message
      }`,
    );
  }
  return "record";
}

function liveHost(live: SyscallBackend): TranscriptHost {
  return {
    arch: kernelArch(currentPlatform().arch),
    kernel: live.readTextFile(OSRELEASE_PATH).trim(),
    possibleCpus: countCpuList(live.readTextFile(POSSIBLE_CPUS_PATH)),
  };
}

async function readTranscriptFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new Error(`bpfmap: cannot read transcript ${path}: ${(error as Error).message}`);
  }
}
