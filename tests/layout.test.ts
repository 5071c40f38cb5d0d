// The command table against the kernel's own header: gcc computes offsetof and
// sizeof for every field the installed <linux/bpf.h> has. Fields newer than
// that header (value_type_btf_obj_fd, map_token_fd, path_fd, btf_log_true_size,
// bpf_map_info's btf_vmlinux_id and hash) are checked against
// kernel-map-commands.md's table instead. bpf_map_info and bpf_btf_info, the
// structs OBJ_GET_INFO_BY_FD fills, are checked the same way.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BPF_BTF_INFO, BPF_MAP_INFO, COMMANDS } from "../ffi/commands.ts";
import { MAP_INFO_SIZE } from "../map_info.ts";

const HEADER = "/usr/include/linux/bpf.h";
const canCompile = existsSync(HEADER) && (() => {
  try {
    execFileSync("cc", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** How a command's fields are reached in `union bpf_attr`. */
function memberPath(command: string, field: string): string {
  if (command.includes("BATCH")) return `batch.${field}`;
  if (command === "BPF_OBJ_GET_INFO_BY_FD") return `info.${field}`;
  if (command === "BPF_MAP_GET_FD_BY_ID" && field === "map_id") return "map_id";
  return field;
}

test("every attr field sits where <linux/bpf.h> puts it", {
  skip: canCompile ? false : "no cc or header",
}, () => {
  const header = readFileSync(HEADER, "utf8");
  const checked: string[] = [];
  const newer: string[] = [];
  let program =
    "#include <stddef.h>\n#include <stdio.h>\n#include <linux/bpf.h>\nint main(void) {\n";
  for (const command of COMMANDS.values()) {
    for (const field of command.fieldList) {
      const path = memberPath(command.name, field.name);
      const leaf = path.split(".").pop()!;
      if (!new RegExp(`\\b${leaf}(\\[\\w+\\])?;`).test(header)) {
        newer.push(`${command.name}.${field.name}`);
        continue;
      }
      checked.push(`${command.name}.${field.name}`);
      program +=
        `  printf("%s %zu %zu\\n", "${command.name}.${field.name}", offsetof(union bpf_attr, ${path}), `
        + `sizeof(((union bpf_attr *)0)->${path}));\n`;
    }
  }
  // The info structs a pointer leads to, checked against their own declarations.
  for (const layout of [BPF_MAP_INFO, BPF_BTF_INFO]) {
    const body = new RegExp(`struct ${layout.name} \\{([\\s\\S]*?)\\n\\}`).exec(header)![1];
    for (const field of layout.fieldList) {
      const name = `${layout.name}.${field.name}`;
      if (!new RegExp(`\\b${field.name}(\\[\\w+\\])?;`).test(body)) {
        newer.push(name);
        continue;
      }
      checked.push(name);
      program +=
        `  printf("%s %zu %zu\\n", "${name}", offsetof(struct ${layout.name}, ${field.name}), `
        + `sizeof(((struct ${layout.name} *)0)->${field.name}));\n`;
    }
  }
  program += `  printf("bpf_map_info %zu\\n", sizeof(struct bpf_map_info));\n  return 0;\n}\n`;
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-layout-"));
  try {
    writeFileSync(join(dir, "layout.c"), program);
    execFileSync("cc", ["-o", join(dir, "layout"), join(dir, "layout.c")]);
    const lines = execFileSync(join(dir, "layout"), { encoding: "utf8" }).trim().split("\n");
    const fromC = new Map(lines.map((line) => {
      const [name, ...numbers] = line.split(" ");
      return [name, numbers.map(Number)];
    }));
    const structs = [...COMMANDS.values(), BPF_MAP_INFO, BPF_BTF_INFO];
    for (const struct of structs) {
      for (const field of struct.fieldList) {
        const c = fromC.get(`${struct.name}.${field.name}`);
        if (c !== undefined) {
          assert.deepEqual([field.offset, field.size], c, `${struct.name}.${field.name}`);
        }
      }
    }
    assert.ok(fromC.get("bpf_map_info")![0] <= MAP_INFO_SIZE);
  } finally {
    rmSync(dir, { recursive: true });
  }
  assert.ok(checked.length >= 50, `${checked.length} fields checked`);
  assert.deepEqual(newer.sort(), [
    "BPF_BTF_LOAD.btf_log_true_size",
    "BPF_MAP_CREATE.map_token_fd",
    "BPF_MAP_CREATE.value_type_btf_obj_fd",
    "BPF_OBJ_GET.path_fd",
    "BPF_OBJ_PIN.path_fd",
    "bpf_map_info.btf_vmlinux_id",
    "bpf_map_info.hash",
    "bpf_map_info.hash_size",
  ]);
});

test("attr sizes: 56 for the batch commands, each command's own size for the rest", () => {
  const sizes = Object.fromEntries([...COMMANDS.values()].map((c) => [c.name, c.size]));
  assert.deepEqual(sizes, {
    BPF_MAP_CREATE: 80,
    BPF_MAP_LOOKUP_ELEM: 32,
    BPF_MAP_UPDATE_ELEM: 32,
    BPF_MAP_DELETE_ELEM: 32,
    BPF_MAP_GET_NEXT_KEY: 32,
    BPF_OBJ_PIN: 20,
    BPF_OBJ_GET: 20,
    BPF_MAP_GET_NEXT_ID: 12,
    BPF_MAP_GET_FD_BY_ID: 12,
    BPF_OBJ_GET_INFO_BY_FD: 16,
    BPF_BTF_LOAD: 32,
    BPF_BTF_GET_FD_BY_ID: 12,
    BPF_MAP_LOOKUP_AND_DELETE_ELEM: 32,
    BPF_MAP_FREEZE: 4,
    BPF_MAP_LOOKUP_BATCH: 56,
    BPF_MAP_LOOKUP_AND_DELETE_BATCH: 56,
    BPF_MAP_UPDATE_BATCH: 56,
    BPF_MAP_DELETE_BATCH: 56,
  });
  const create = COMMANDS.get(0)!;
  assert.deepEqual(
    [create.fields.value_type_btf_obj_fd.offset, create.fields.map_token_fd.offset],
    [72, 76],
  );
  assert.equal(COMMANDS.get(6)!.fieldList.at(-1)!.offset, 16);
});
