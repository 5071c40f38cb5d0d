/**
 * `bpfmap link ...`: bpftool's `link show` and `link list`, with the same
 * syntax and the same output (plain, `-j` and `-p`), on bpfmap's systems,
 * so they record and replay as the map and prog commands do.
 *
 * @module
 */

import { attachTypeNumber, progTypeName } from "../ffi/prog_types.ts";
import type { Link, LinkInfo } from "../programs/link.ts";
import {
  type Args,
  CommandError,
  type LinkRef,
  openPinnedAt,
  runSubcommand,
  takeLinkRef,
  unlessGone,
} from "./args.ts";
import type { JsonWriter } from "./json_writer.ts";
import type { CliContext } from "./map_command.ts";

/**
 * The usage text of `bpfmap link`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LINK_USAGE } from "./link_command.ts";
 * assert.match(LINK_USAGE, /^Usage: bpfmap \[OPTIONS\] link \{ show \| list \} {3}\[LINK\]\n/);
 * assert.match(LINK_USAGE, /LINK := \{ id LINK_ID \| pinned FILE \}/);
 * ```
 */
export const LINK_USAGE = `Usage: bpfmap [OPTIONS] link { show | list }   [LINK]
       bpfmap [OPTIONS] link help

       LINK := { id LINK_ID | pinned FILE }
       OPTIONS := { -j | --json } [{ -p | --pretty }] | --record FILE | --replay FILE
                  | --path NAME=DIR
`;

/**
 * The names bpftool 7.1 prints, as its libbpf 1.1 knows them: link types up
 * to `struct_ops` and attach types up to `lsm_cgroup`; newer ones it prints
 * as numbers.
 */
const LIBBPF_LINK_TYPES = 10;
const LIBBPF_ATTACH_TYPES = attachTypeNumber("lsm_cgroup") + 1;
/** libbpf 1.1 names program types up to `syscall`. */
const LIBBPF_PROG_TYPES = 32;

/** `enum bpf_link_type` numbers of the links whose members bpftool 7.1 prints. */
const RAW_TRACEPOINT = 1;
const TRACING = 2;
const CGROUP = 3;
const ITER = 4;
const NETNS = 5;

/**
 * The iterators whose map bpftool 7.1 prints (its `is_iter_map_target`):
 * not `sockmap`'s, which the kernel names all the same.
 */
const MAP_ITERATORS = ["bpf_map_elem", "bpf_sk_storage_map"];
/** The links whose attach type bpftool 7.1 prints. */
const ATTACHED = [TRACING, CGROUP, NETNS];

/**
 * Runs `link SUBCOMMAND ...`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { openSystem } from "../mod.ts";
 * import { Args } from "./args.ts";
 * import { LINK_USAGE, runLinkCommand } from "./link_command.ts";
 * import { Output } from "./output.ts";
 *
 * await using system = await openSystem({ mode: "live" });
 * // r0 = 0; exit: on every syscall's entry, doing nothing
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * const program = system.loadProgram({ type: "raw_tracepoint", instructions, license: "GPL" });
 * const link = program.attachRawTracepoint("sys_enter");
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * const ctx = { system, out, err: out, batchSize: 8192 };
 * runLinkCommand(ctx, new Args(["show", "id", `${link.id}`]));
 * assert.throws(() => runLinkCommand(ctx, new Args(["frob"])), {
 *   name: "UsageError",
 *   message: `unknown link command 'frob'\n\n${LINK_USAGE}`,
 * });
 * out.flush();
 * closeSync(out.fd);
 * assert.equal(
 *   readFileSync(`${dir}/out`, "utf8"),
 *   `${link.id}: raw_tracepoint  prog ${program.id}  \n\ttp 'sys_enter'  \n`,
 * );
 * rmSync(dir, { recursive: true });
 * ```
 */
export function runLinkCommand(ctx: CliContext, args: Args): void {
  runSubcommand(ctx, args, "link", LINK_USAGE, { show, list: show });
}

function show(ctx: CliContext, args: Args): void {
  if (args.left === 0) {
    ctx.json?.startArray();
    for (const id of ctx.system.listLinkIds()) {
      const link = unlessGone(() => ctx.system.linkFromId(id));
      if (link !== undefined) printOne(ctx, link); // else: gone since it was listed
    }
    ctx.json?.endArray();
    return;
  }
  const ref = takeLinkRef(args);
  args.end();
  printOne(ctx, openLink(ctx, ref));
}

function openLink(ctx: CliContext, ref: LinkRef): Link {
  if (ref.kind === "pinned") {
    return openPinnedAt(ref.path, (path) => ctx.system.openPinnedLink(path));
  }
  const link = unlessGone(() => ctx.system.linkFromId(ref.id));
  if (link === undefined) throw new CommandError(`id ${ref.id}: no such link`);
  return link;
}

/** Prints a link and closes it. */
function printOne(ctx: CliContext, link: Link): void {
  try {
    const info = link.info();
    const view: LinkView = { info };
    // bpftool names a tracing link's program type: it opens the program to learn it.
    if (info.type === TRACING) view.progType = programType(ctx, info.programId);
    showLink(ctx.out, ctx.json, view);
  } finally {
    link.close();
  }
}

/** The type of the program with this id (`get_prog_info`), or `undefined` if it is gone. */
function programType(ctx: CliContext, id: number): number | undefined {
  const program = unlessGone(() => ctx.system.programFromId(id));
  try {
    return program?.info().type;
  } finally {
    program?.close();
  }
}

/** What `link show` prints of one link. */
export interface LinkView {
  info: LinkInfo;
  /** A tracing link's program type, by number. */
  progType?: number | undefined;
}

/** A name libbpf 1.1 knows, or the number bpftool 7.1 prints in its place. */
function named(name: string, number: number, known: number): string | number {
  return number < known && !name.startsWith("type ") ? name : number;
}

/**
 * `link show` of one link, as bpftool 7.1's `show_link_close_plain` /
 * `show_link_close_json` (without `pids`, which it prints only when built
 * with skeletons, and without `pinned`, which it prints only with `-f`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { JsonWriter } from "./json_writer.ts";
 * import { showLink } from "./link_command.ts";
 * import { Output } from "./output.ts";
 *
 * const info = {
 *   type: 3, typeName: "cgroup", id: 9, programId: 40,
 *   attachType: "cgroup_inet_ingress", cgroupId: 1234n,
 * };
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * showLink(out, undefined, { info });
 * // An iterator's target follows on the first line; a map's iterator names its map.
 * const iter = { type: 4, typeName: "iter", id: 10, programId: 41, targetName: "bpf_map_elem" };
 * showLink(out, undefined, { info: { ...iter, mapId: 7 } });
 * const json = new JsonWriter(out, false);
 * showLink(out, json, { info: { ...info, type: 11, typeName: "tcx", attachType: "tcx_ingress" } });
 * json.finish();
 * out.flush();
 * closeSync(out.fd);
 * assert.equal(readFileSync(`${dir}/out`, "utf8"),
 *   "9: cgroup  prog 40  \n\tcgroup_id 1234  attach_type cgroup_inet_ingress  \n"
 *     + "10: iter  prog 41  target_name bpf_map_elem  map_id 7  \n"
 *     // bpftool 7.1 knows neither tcx links nor what they hold.
 *     + '{"id":9,"type":11,"prog_id":40}\n');
 * rmSync(dir, { recursive: true });
 * ```
 */
export function showLink(
  out: { write(text: string): void },
  json: JsonWriter | undefined,
  view: LinkView,
): void {
  const { info } = view;
  const type = named(info.typeName, info.type, LIBBPF_LINK_TYPES);
  const attach = info.attachType === undefined ? undefined : named(
    info.attachType,
    info.attachType.startsWith("type ")
      ? Number(info.attachType.slice(5))
      : attachTypeNumber(info.attachType),
    LIBBPF_ATTACH_TYPES,
  );
  const mapIterator = info.type === ITER && MAP_ITERATORS.includes(info.targetName ?? "");
  const progType = view.progType === undefined
    ? undefined
    : named(progTypeName(view.progType), view.progType, LIBBPF_PROG_TYPES);
  if (json !== undefined) {
    const field = (name: string, value: string | number) =>
      typeof value === "number" ? json.rawField(name, value) : json.stringField(name, value);
    json.startObject();
    json.rawField("id", info.id);
    field("type", type);
    json.rawField("prog_id", info.programId);
    if (info.type === RAW_TRACEPOINT) json.stringField("tp_name", info.tracepoint ?? "");
    if (info.type === TRACING && progType !== undefined) field("prog_type", progType);
    if (info.type === CGROUP) json.rawField("cgroup_id", String(info.cgroupId ?? 0n));
    if (info.type === ITER) {
      json.stringField("target_name", info.targetName ?? "");
      if (mapIterator) json.rawField("map_id", info.mapId ?? 0);
    }
    if (info.type === NETNS) json.rawField("netns_ino", info.netnsIno ?? 0);
    if (ATTACHED.includes(info.type) && attach !== undefined) field("attach_type", attach);
    json.endObject();
    return;
  }
  let text = `${info.id}: ${
    typeof type === "number" ? `type ${type}` : type
  }  prog ${info.programId}  `;
  if (info.type === RAW_TRACEPOINT) text += `\n\ttp '${info.tracepoint ?? ""}'  `;
  if (info.type === TRACING && progType !== undefined) text += `\n\tprog_type ${progType}  `;
  if (info.type === CGROUP) text += `\n\tcgroup_id ${info.cgroupId ?? 0n}  `;
  // An iterator's target follows on the first line, as bpftool prints it.
  if (info.type === ITER) text += `target_name ${info.targetName ?? ""}  `;
  if (mapIterator) text += `map_id ${info.mapId ?? 0}  `;
  if (info.type === NETNS) text += `\n\tnetns_ino ${info.netnsIno ?? 0}  `;
  if (ATTACHED.includes(info.type) && attach !== undefined) text += `attach_type ${attach}  `;
  out.write(`${text}\n`);
}
