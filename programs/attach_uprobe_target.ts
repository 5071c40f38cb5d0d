/**
 * Where an uprobe goes: the file offset of a function in an executable or
 * shared library (what `perf_event_open`'s uprobe PMU takes), found in the
 * file's ELF symbols (`.symtab`, else `.dynsym`) and mapped through the
 * `PT_LOAD` segment that holds it, as libbpf's `elf_find_func_offset` does.
 * x86_64, aarch64 and any other little-endian ELF64 file.
 *
 * @module
 */

const ELF_MAGIC = 0x464c457f; // "\x7fELF", read as a little-endian u32
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const PT_LOAD = 1;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const SYMBOL_SIZE = 24;

/**
 * The file offset of function `symbol` in the ELF64 file `bytes`.
 *
 * @throws {TypeError} if the file is not a little-endian ELF64 file, has no
 * such function, or no loadable segment holds it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readFileSync } from "node:fs";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { uprobeOffset } from "./attach_uprobe_target.ts";
 *
 * // The C library this process runs with (Deno grants /proc to --allow-all only: read through
 * // libc), and its getpid (in .dynsym).
 * const maps = liveKernel().backend.readTextFile("/proc/self/maps");
 * const libc = /\s(\/\S*libc\.so\.6)$/m.exec(maps)![1]!;
 * const bytes = readFileSync(libc);
 * assert.ok(uprobeOffset(bytes, "getpid", libc) > 0);
 * assert.throws(() => uprobeOffset(bytes, "no_such_function_here", libc), /has no function/);
 * assert.throws(() => uprobeOffset(new Uint8Array(64), "main"), /not an ELF64/);
 * ```
 */
export function uprobeOffset(bytes: Uint8Array, symbol: string, file = "the file"): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (
    bytes.byteLength < 64 || view.getUint32(0, true) !== ELF_MAGIC
    || bytes[4] !== ELFCLASS64 || bytes[5] !== ELFDATA2LSB
  ) {
    throw new TypeError(`${file} is not an ELF64 little-endian file`);
  }
  const u64 = (at: number) => Number(view.getBigUint64(at, true));
  const phoff = u64(32);
  const shoff = u64(40);
  const [phentsize, phnum, shentsize, shnum] = [54, 56, 58, 60].map((at) =>
    view.getUint16(at, true)
  );
  const section = (index: number) => {
    const at = shoff + index * shentsize!;
    return {
      type: view.getUint32(at + 4, true),
      offset: u64(at + 24),
      size: u64(at + 32),
      link: view.getUint32(at + 40, true),
    };
  };
  const address = findSymbol(bytes, view, section, shnum!, symbol);
  if (address === undefined) throw new TypeError(`${file} has no function ${symbol}`);
  for (let i = 0; i < phnum!; i++) {
    const at = phoff + i * phentsize!;
    if (view.getUint32(at, true) !== PT_LOAD) continue;
    const [offset, vaddr, memsz] = [u64(at + 8), u64(at + 16), u64(at + 40)];
    if (address >= vaddr && address < vaddr + memsz) return address - vaddr + offset;
  }
  throw new TypeError(
    `${file}: no loadable segment holds ${symbol} (address 0x${address.toString(16)})`,
  );
}

type SectionReader = (
  index: number,
) => { type: number; offset: number; size: number; link: number };

/** The address of function `symbol`: `.symtab` first (a stripped file has `.dynsym` only). */
function findSymbol(
  bytes: Uint8Array,
  view: DataView,
  section: SectionReader,
  count: number,
  symbol: string,
): number | undefined {
  const wanted = new TextEncoder().encode(symbol);
  for (const kind of [SHT_SYMTAB, SHT_DYNSYM]) {
    for (let i = 0; i < count; i++) {
      const table = section(i);
      if (table.type !== kind) continue;
      const strings = section(table.link);
      for (
        let at = table.offset;
        at + SYMBOL_SIZE <= table.offset + table.size;
        at += SYMBOL_SIZE
      ) {
        const type = bytes[at + 4]! & 0xf;
        const value = Number(view.getBigUint64(at + 8, true));
        if ((type !== STT_FUNC && type !== STT_GNU_IFUNC) || value === 0) continue;
        const name = strings.offset + view.getUint32(at, true);
        if (bytes[name + wanted.byteLength] !== 0) continue;
        if (wanted.every((byte, j) => bytes[name + j] === byte)) return value;
      }
    }
  }
  return undefined;
}
