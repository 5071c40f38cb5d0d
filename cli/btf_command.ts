/**
 * `bpfmap btf ...`: bpftool's `btf show` and `btf list`, with the same
 * syntax and the same output (plain, `-j` and `-p`), on bpfmap's systems,
 * so they record and replay as the map, prog and link commands do.
 *
 * @module
 */

import { type BtfObjectInfo, listBtfIds, readBtfObjectInfo } from "../btf/btf.ts";
import { btfGetFdById, mapGetFdById, progGetFdById } from "../ffi/bpf.ts";
import { BPF_OBJ_GET_INFO_BY_FD } from "../ffi/commands.ts";
import { ENOENT } from "../ffi/errno.ts";
import { BpfError } from "../ffi/errors.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { readMapInfo } from "../maps/info.ts";
import { readProgramInfo } from "../programs/program.ts";
import {
  type Args,
  CommandError,
  isPrefix,
  parseUnsigned,
  runSubcommand,
  UsageError,
} from "./args.ts";
import type { CliContext } from "./map_command.ts";

/**
 * The usage text of `bpfmap btf`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BTF_USAGE } from "./btf_command.ts";
 * assert.match(BTF_USAGE, /^Usage: bpfmap \[OPTIONS\] btf \{ show \| list \} \[id BTF_ID\]\n/);
 * ```
 */
export const BTF_USAGE = `Usage: bpfmap [OPTIONS] btf { show | list } [id BTF_ID]
       bpfmap [OPTIONS] btf help

       OPTIONS := { -j | --json } [{ -p | --pretty }] | --record FILE | --replay FILE
                  | --path NAME=DIR
`;

/**
 * Runs `btf SUBCOMMAND ...`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { openSystem } from "../mod.ts";
 * import { Args } from "./args.ts";
 * import { BTF_USAGE, runBtfCommand } from "./btf_command.ts";
 * import { Output } from "./output.ts";
 *
 * await using system = await openSystem({ mode: "live" });
 * const btf = system.loadBtf([{ kind: "float", name: "double", size: 8 }]);
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * const ctx = { system, out, err: out, batchSize: 8192 };
 * runBtfCommand(ctx, new Args(["show", "id", `${btf.id}`]));
 * assert.throws(() => runBtfCommand(ctx, new Args(["frob"])), {
 *   name: "UsageError",
 *   message: `unknown btf command 'frob'\n\n${BTF_USAGE}`,
 * });
 * out.flush();
 * closeSync(out.fd);
 * // No map or program holds it: no prog_ids, no map_ids.
 * assert.equal(readFileSync(`${dir}/out`, "utf8"), `${btf.id}: name <anon>  size 44B\n`);
 * rmSync(dir, { recursive: true });
 * ```
 */
export function runBtfCommand(ctx: CliContext, args: Args): void {
  runSubcommand(ctx, args, "btf", BTF_USAGE, { show, list: show });
}

function show(ctx: CliContext, args: Args): void {
  const kernel = ctx.system.kernel;
  // One object: opened first, as bpftool does, before the walks that find its users; its info
  // read at once too, so that a replay numbers it first (vmlinux, id 1, stays 1).
  let one: BtfObjectInfo | undefined;
  if (args.left > 0) {
    const word = args.take("id");
    if (!isPrefix(word, "id")) throw new UsageError(`expected 'id', got: '${word}'`);
    const text = args.take("a BTF id after 'id'");
    const id = parseUnsigned(text, "BTF id");
    if (id === 0) throw new UsageError(`invalid BTF id: ${text}`);
    args.end();
    const fd = openById(kernel, id);
    if (fd < 0) throw new CommandError(`id ${id}: no such BTF object`);
    try {
      one = readBtfObjectInfo(kernel, fd);
    } finally {
      kernel.close(fd);
    }
  }
  const users = btfUsers(kernel, ctx.system.listProgramIds(), ctx.system.listMapIds());
  if (one !== undefined) {
    printOne(ctx, one, users);
    return;
  }
  ctx.json?.startArray();
  for (const id of listBtfIds(kernel)) {
    const fd = openById(kernel, id);
    if (fd < 0) continue; // gone since it was listed
    try {
      printOne(ctx, readBtfObjectInfo(kernel, fd), users);
    } finally {
      kernel.close(fd);
    }
  }
  ctx.json?.endArray();
}

/** An fd for the BTF object `id`, or -ENOENT if there is none; other failures throw. */
function openById(kernel: Kernel, id: number): number {
  const fd = btfGetFdById(kernel, id);
  if (fd >= 0 || fd === -ENOENT) return fd;
  throw new BpfError("BPF_BTF_GET_FD_BY_ID", -fd, `BTF id ${id}`);
}

/** The programs and maps that hold each BTF object, by its id, in bpftool 7.1's order. */
export interface BtfUsers {
  programs: Map<number, number[]>;
  maps: Map<number, number[]>;
}

/** Walks the programs and maps of `programIds` and `mapIds` for their BTF ids. */
function btfUsers(kernel: Kernel, programIds: number[], mapIds: number[]): BtfUsers {
  const programs = holders(programIds, (id) => {
    const fd = progGetFdById(kernel, id);
    if (fd < 0) return gone(fd, "BPF_PROG_GET_FD_BY_ID", `program id ${id}`);
    try {
      return readProgramInfo(kernel, fd).btfId;
    } finally {
      kernel.close(fd);
    }
  });
  const maps = holders(mapIds, (id) => {
    const fd = mapGetFdById(kernel, id);
    if (fd < 0) return gone(fd, "BPF_MAP_GET_FD_BY_ID", `map id ${id}`);
    try {
      const info = readMapInfo(kernel, fd);
      if (typeof info === "number") {
        throw new BpfError(BPF_OBJ_GET_INFO_BY_FD.name, -info, `map id ${id}`);
      }
      return info.btfId;
    } finally {
      kernel.close(fd);
    }
  });
  return { programs, maps };
}

/** 0 (no BTF) for an object gone since it was listed (ENOENT); any other failure throws. */
function gone(result: number, op: string, what: string): number {
  if (result === -ENOENT) return 0;
  throw new BpfError(op, -result, what);
}

/**
 * The objects of `ids` that hold a BTF object, under its id, in the order
 * bpftool 7.1 prints them: it appends each (btf id, object id) to a libbpf
 * hashmap keyed by btf id as it walks, and prints a key's entries from its
 * bucket's head. An entry goes in at the head; a hashmap that grows (from 4
 * buckets, doubling when an entry would fill more than 3/4) moves each
 * bucket's entries to the new one head first, which reverses them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { holders } from "./btf_command.ts";
 *
 * // bpftool 7.1 on six maps of BTF 3740, ids walked in order: "map_ids 17,16,15,11,12,13"
 * // (grown before the fourth, which reversed the first three).
 * const btfIds = new Map([[11, 3740], [12, 3740], [13, 3740], [14, 0], [15, 3740], [16, 3740], [17, 3740]]);
 * const held = holders([...btfIds.keys()], (id) => btfIds.get(id)!);
 * assert.deepEqual(held.get(3740), [17, 16, 15, 11, 12, 13]);
 * ```
 */
export function holders(ids: number[], btfIdOf: (id: number) => number): Map<number, number[]> {
  const byBtf = new Map<number, number[]>();
  let size = 0;
  let capacity = 0;
  for (const id of ids) {
    const btfId = btfIdOf(id);
    if (btfId === 0) continue;
    // libbpf's hashmap_needs_to_grow, before each insert.
    if (capacity === 0 || Math.floor((size + 1) * 4 / 3) > capacity) {
      capacity = capacity === 0 ? 4 : capacity * 2;
      for (const entries of byBtf.values()) entries.reverse();
    }
    const entries = byBtf.get(btfId);
    if (entries === undefined) byBtf.set(btfId, [id]);
    else entries.unshift(id);
    size++;
  }
  return byBtf;
}

/** Prints a BTF object, as bpftool 7.1's `show_btf_plain` / `show_btf_json`. */
function printOne(ctx: CliContext, info: BtfObjectInfo, users: BtfUsers): void {
  const programs = users.programs.get(info.id) ?? [];
  const maps = users.maps.get(info.id) ?? [];
  const { json } = ctx;
  if (json !== undefined) {
    json.startObject();
    json.rawField("id", info.id);
    json.rawField("size", info.size);
    for (const [name, ids] of [["prog_ids", programs], ["map_ids", maps]] as const) {
      json.name(name);
      json.startArray();
      for (const id of ids) json.raw(String(id));
      json.endArray();
    }
    json.rawField("kernel", String(info.kernelBtf));
    if (info.name) json.stringField("name", info.name);
    json.endObject();
    return;
  }
  const name = info.kernelBtf ? `[${info.name}]` : info.name || "<anon>";
  let text = `${info.id}: name ${name}  size ${info.size}B`;
  if (programs.length > 0) text += `  prog_ids ${programs.join(",")}`;
  if (maps.length > 0) text += `  map_ids ${maps.join(",")}`;
  ctx.out.write(`${text}\n`);
}
