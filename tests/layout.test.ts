// The command table against the kernel's own layouts. gcc computes offsetof
// and sizeof for every field the installed <linux/bpf.h> has; a field newer
// than that header is checked against kernel-map-commands.md's layout table,
// and one the table does not list either against the running kernel's BTF
// (bpftool's C dump of /sys/kernel/btf/vmlinux, compiled the same way). Which
// fields take which road is read from the header, never pinned: a newer header
// moves fields from the table to gcc. bpf_map_info and bpf_btf_info, the
// structs OBJ_GET_INFO_BY_FD fills, are checked the same way.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  BPF_BTF_INFO,
  BPF_LINK_INFO,
  BPF_LINK_INFO_RAW_TRACEPOINT,
  BPF_MAP_INFO,
  BPF_PROG_INFO,
  commandKey,
  COMMANDS,
  COMMANDS_BY_KEY,
  type Field,
} from "../ffi/commands.ts";
import { MAP_INFO_SIZE } from "../maps/info.ts";
import { toolTest } from "./helpers/tools.ts";

const HEADER = "/usr/include/linux/bpf.h";
/** The project's notes on the kernel's map commands, beside the repository. */
const DOC = fileURLToPath(new URL("../../shared/docs/kernel-map-commands.md", import.meta.url));
// Not in toolTest's paths: Deno lets no test stat /sys without --allow-all; bpftool reads it.
const VMLINUX = "/sys/kernel/btf/vmlinux";

/** One field of the command table, and how C names it. */
interface Checked {
  /** `BPF_MAP_CREATE.map_flags`, `bpf_map_info.hash`. */
  name: string;
  field: Field;
  /** The C type it is a member of: `union bpf_attr`, `struct bpf_map_info`. */
  type: string;
  /** The member's path in that type: `batch.count`, `map_flags`. */
  path: string;
  /** Which part of kernel-map-commands.md's layout list describes it. */
  docPart: RegExp;
}

/** Fields of a wider shape's union member (`BPF_LINK_CREATE:tcx`): their struct in the union. */
const VARIANT_MEMBERS: Record<string, string> = {
  "BPF_LINK_CREATE:perf_event.bpf_cookie": "perf_event.bpf_cookie",
  "BPF_LINK_CREATE:tcx.relative_fd": "tcx.relative_fd",
  "BPF_LINK_CREATE:tcx.expected_revision": "tcx.expected_revision",
};

/** How a command's fields are reached in `union bpf_attr` (`command`: its key). */
function memberPath(key: string, field: string): string {
  const command = key.replace(/:.*/, "");
  if (command === "BPF_LINK_CREATE") {
    return `link_create.${VARIANT_MEMBERS[`${key}.${field}`] ?? field}`;
  }
  if (command.includes("BATCH")) return `batch.${field}`;
  if (command === "BPF_OBJ_GET_INFO_BY_FD") return `info.${field}`;
  if (command === "BPF_PROG_TEST_RUN") return `test.${field}`;
  if (command === "BPF_RAW_TRACEPOINT_OPEN") return `raw_tracepoint.${field}`;
  if (command === "BPF_LINK_UPDATE") return `link_update.${field}`;
  if (command === "BPF_LINK_DETACH") return `link_detach.${field}`;
  if (command === "BPF_MAP_GET_FD_BY_ID" && field === "map_id") return "map_id";
  return field;
}

/** The bullet of the layout list that describes a command: `- MAP_CREATE: ...`, `- Batch commands: ...`. */
function docPart(command: string): RegExp {
  const short = command.replace(/^BPF_/, "");
  if (command.includes("BATCH")) return /^- Batch commands:/;
  if (command.endsWith("_ELEM") || command === "BPF_MAP_GET_NEXT_KEY") {
    return /^- Element commands/;
  }
  return new RegExp(`^- (\\w+ / )?${short}( / \\w+)?:`);
}

/** Info fields that are members of a struct's union: their paths through it. */
const UNION_MEMBERS: Record<string, string> = {
  "bpf_link_info.ifindex": "xdp.ifindex",
  "bpf_link_info.tp_name": "raw_tracepoint.tp_name",
  "bpf_link_info.tp_name_len": "raw_tracepoint.tp_name_len",
};

/** The structs OBJ_GET_INFO_BY_FD fills (a link's twice: its raw tracepoint member has a pointer). */
const INFO_LAYOUTS = [
  BPF_MAP_INFO,
  BPF_PROG_INFO,
  BPF_BTF_INFO,
  BPF_LINK_INFO,
  BPF_LINK_INFO_RAW_TRACEPOINT,
];

const FIELDS: Checked[] = [
  ...[...COMMANDS_BY_KEY.values()].flatMap((command) =>
    command.fieldList.map((field) => ({
      name: `${commandKey(command)}.${field.name}`,
      field,
      type: "union bpf_attr",
      path: memberPath(commandKey(command), field.name),
      docPart: docPart(command.name),
    }))
  ),
  ...INFO_LAYOUTS.flatMap((layout) =>
    layout.fieldList.map((field) => ({
      name: `${layout.name}.${field.name}`,
      field,
      type: `struct ${layout.name}`,
      path: UNION_MEMBERS[`${layout.name}.${field.name}`] ?? field.name,
      docPart: new RegExp(`^- [\\s\\S]*struct ${layout.name} \\(`),
    }))
  ),
];

/** Whether the header declares the field: its member among `union bpf_attr` or in its struct. */
function headerHas(header: string, checked: Checked): boolean {
  const leaf = checked.path.split(".").pop()!;
  const struct = /^struct (\w+)/.exec(checked.type)?.[1];
  const body = struct === undefined
    ? header
    : new RegExp(`struct ${struct} \\{([\\s\\S]*?)\\n\\}`).exec(header)?.[1] ?? "";
  return new RegExp(`\\b${leaf}(\\[\\w+\\])?;`).test(body);
}

/** `[offset, size]` of the field in kernel-map-commands.md's layout list, if it is there. */
function fromDoc(doc: string, checked: Checked): number[] | undefined {
  const layouts = doc.slice(
    doc.indexOf("## Layouts"),
    doc.indexOf("\n## ", doc.indexOf("## Layouts") + 1),
  );
  // Bullets, continuation lines joined; an info struct's fields follow its name.
  const bullets = layouts.split(/\n(?=- )/).map((bullet) => bullet.replace(/\n +/g, " "));
  const bullet = bullets.find((text) => checked.docPart.test(text));
  if (bullet === undefined) return undefined;
  const struct = /^struct (\w+)/.exec(checked.type)?.[1];
  const text = struct === undefined
    ? bullet.replace(/struct bpf_\w+_info \([\s\S]*/, "")
    : bullet.slice(bullet.indexOf(`struct ${struct}`));
  const match = new RegExp(`\\b${checked.field.name} (\\d+)(?:/(\\d+))?`).exec(text);
  // A bare offset is a u32's: the table writes sizes only where they are not 4.
  return match === null ? undefined : [Number(match[1]), Number(match[2] ?? 4)];
}

/** `[offset, size]` of each field, as gcc compiles `include` (a header's text or `#include`s). */
function compiled(include: string, fields: Checked[]): Map<string, number[]> {
  let program = `${include}\nint main(void) {\n`;
  for (const { name, type, path } of fields) {
    program +=
      `  printf("%s %lu %lu\\n", "${name}", (unsigned long)__builtin_offsetof(${type}, ${path}), `
      + `(unsigned long)sizeof(((${type} *)0)->${path}));\n`;
  }
  program += `  printf("bpf_map_info 0 %lu\\n", (unsigned long)sizeof(struct bpf_map_info));\n`
    + `  return 0;\n}\n`;
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-layout-"));
  try {
    writeFileSync(join(dir, "layout.c"), program);
    execFileSync("cc", ["-w", "-o", join(dir, "layout"), join(dir, "layout.c")]);
    const lines = execFileSync(join(dir, "layout"), { encoding: "utf8" }).trim().split("\n");
    return new Map(lines.map((line) => {
      const [name = "", ...numbers] = line.split(" ");
      return [name, numbers.map(Number)];
    }));
  } finally {
    rmSync(dir, { recursive: true });
  }
}

// Which fields take which road, decided from the header and the table as they are here.
const header = existsSync(HEADER) ? readFileSync(HEADER, "utf8") : "";
const doc = existsSync(DOC) ? readFileSync(DOC, "utf8") : "";
const newer = FIELDS.filter((checked) => !headerHas(header, checked));
const unlisted = newer.filter((checked) => fromDoc(doc, checked) === undefined);

toolTest("every attr and info field sits where the kernel's own layouts put it", {
  commands: ["cc", ...(unlisted.length > 0 ? ["bpftool"] : [])],
  paths: [HEADER, ...(newer.length > 0 ? [DOC] : [])],
}, () => {
  const inHeader = FIELDS.filter((checked) => !newer.includes(checked));
  const fromHeader = compiled("#include <stdio.h>\n#include <linux/bpf.h>", inHeader);
  for (const { name, field } of inHeader) {
    assert.deepEqual([field.offset, field.size], fromHeader.get(name), `${name} (gcc)`);
  }
  const [, infoSize = NaN] = fromHeader.get("bpf_map_info") ?? [];
  assert.ok(infoSize <= MAP_INFO_SIZE, `bpf_map_info: ${infoSize} bytes`);
  for (const checked of newer.filter((checked) => !unlisted.includes(checked))) {
    const { name, field } = checked;
    assert.deepEqual([field.offset, field.size], fromDoc(doc, checked), `${name} (table)`);
  }
  if (unlisted.length > 0) {
    const vmlinux = execFileSync("bpftool", ["btf", "dump", "file", VMLINUX, "format", "c"], {
      encoding: "utf8",
      maxBuffer: 1 << 28,
    });
    const fromKernel = compiled(`${vmlinux}\nextern int printf(const char *, ...);`, unlisted);
    for (const { name, field } of unlisted) {
      assert.deepEqual([field.offset, field.size], fromKernel.get(name), `${name} (kernel BTF)`);
    }
  }
  // Every field of the table took one road: the header's, or the two for fields it lacks.
  assert.equal(inHeader.length + newer.length, FIELDS.length);
  assert.ok(inHeader.length >= 50, `${inHeader.length} fields checked by gcc`);
});

test("attr sizes: 56 for the batch commands, each command's own size for the rest, each shape's", () => {
  const sizes = Object.fromEntries(
    [...COMMANDS_BY_KEY.values()].map((c) => [commandKey(c), c.size]),
  );
  assert.deepEqual(sizes, {
    BPF_MAP_CREATE: 80,
    BPF_MAP_LOOKUP_ELEM: 32,
    BPF_MAP_UPDATE_ELEM: 32,
    BPF_MAP_DELETE_ELEM: 32,
    BPF_MAP_GET_NEXT_KEY: 32,
    BPF_PROG_LOAD: 148,
    BPF_OBJ_PIN: 20,
    BPF_OBJ_GET: 20,
    BPF_PROG_TEST_RUN: 76,
    BPF_PROG_GET_NEXT_ID: 12,
    BPF_MAP_GET_NEXT_ID: 12,
    BPF_PROG_GET_FD_BY_ID: 12,
    BPF_MAP_GET_FD_BY_ID: 12,
    BPF_OBJ_GET_INFO_BY_FD: 16,
    BPF_BTF_LOAD: 32,
    BPF_BTF_GET_FD_BY_ID: 12,
    BPF_MAP_LOOKUP_AND_DELETE_ELEM: 32,
    BPF_MAP_FREEZE: 4,
    BPF_BTF_GET_NEXT_ID: 12,
    BPF_MAP_LOOKUP_BATCH: 56,
    BPF_MAP_LOOKUP_AND_DELETE_BATCH: 56,
    BPF_MAP_UPDATE_BATCH: 56,
    BPF_MAP_DELETE_BATCH: 56,
    BPF_RAW_TRACEPOINT_OPEN: 12,
    BPF_LINK_CREATE: 20,
    "BPF_LINK_CREATE:perf_event": 24,
    "BPF_LINK_CREATE:tcx": 32,
    "BPF_PROG_TEST_RUN:syscall": 76,
    "BPF_LINK_CREATE:iter": 28,
    BPF_LINK_UPDATE: 16,
    BPF_LINK_GET_FD_BY_ID: 12,
    BPF_LINK_GET_NEXT_ID: 12,
    BPF_LINK_DETACH: 4,
  });
  const create = COMMANDS.get(0)!;
  const { value_type_btf_obj_fd: btfObjFd, map_token_fd: tokenFd } = create.fields;
  assert.ok(btfObjFd !== undefined && tokenFd !== undefined);
  assert.deepEqual(
    [btfObjFd.offset, tokenFd.offset],
    [72, 76],
  );
  assert.equal(COMMANDS.get(6)!.fieldList.at(-1)!.offset, 16);
});
