/**
 * A struct value exercising every way bpftool prints BTF: char-array text,
 * bool, printable and unprintable chars, a typedef, bitfields, a signed enum
 * (by name and by number), a const u64, a pointer, a union, an int array, a
 * negative s64 and a 128-bit int; with one element's bytes.
 *
 * @module
 */

import type { BtfType } from "../../mod.ts";

const int = (
  name: string,
  size: number,
  encoding: "unsigned" | "signed" | "char" | "bool",
): BtfType => ({
  kind: "int",
  name,
  size,
  bits: size * 8,
  bitOffset: 0,
  encoding,
});
const member = (name: string, type: number, bitOffset: number, bitSize = 0) => ({
  name,
  type,
  bitOffset,
  bitSize,
});

/** The types; the key is type 2 (`unsigned int`), the value type 18 (`struct value`, 96 bytes). */
export const RICH_TYPES: BtfType[] = [
  int("int", 4, "signed"), // 1
  int("unsigned int", 4, "unsigned"), // 2
  int("char", 1, "signed"), // 3: clang's char, a string by its name
  { kind: "struct", name: "pair", size: 8, members: [member("x", 1, 0), member("y", 1, 32)] }, // 4
  { kind: "array", name: "", type: 3, indexType: 2, length: 8 }, // 5
  int("long long unsigned int", 8, "unsigned"), // 6
  int("_Bool", 1, "bool"), // 7
  {
    kind: "enum",
    name: "color",
    size: 4,
    signed: true,
    values: [{ name: "RED", value: 0n }, { name: "GREEN", value: 1n }, { name: "NEG", value: -1n }],
  }, // 8
  { kind: "ptr", name: "", type: 1 }, // 9
  { kind: "union", name: "u", size: 8, members: [member("i", 1, 0), member("c", 5, 0)] }, // 10
  { kind: "typedef", name: "__u16", type: 12 }, // 11
  int("unsigned short", 2, "unsigned"), // 12
  int("signed char", 1, "char"), // 13
  { kind: "array", name: "", type: 1, indexType: 2, length: 2 }, // 14
  {
    kind: "int",
    name: "__int128 unsigned",
    size: 16,
    bits: 128,
    bitOffset: 0,
    encoding: "unsigned",
  }, // 15
  { kind: "const", name: "", type: 6 }, // 16
  int("long long int", 8, "signed"), // 17
  {
    kind: "struct",
    name: "value",
    size: 96,
    members: [
      member("id", 2, 0),
      member("name", 5, 32),
      member("flag", 7, 96),
      member("c1", 13, 104),
      member("c2", 13, 112),
      member("port", 11, 128),
      member("a", 2, 144, 3),
      member("b", 1, 147, 9),
      member("color", 8, 160),
      member("other", 8, 192),
      member("pair", 4, 224),
      member("hits", 16, 288),
      member("p", 9, 352),
      member("u", 10, 416),
      member("arr", 14, 480),
      member("neg", 17, 544),
      member("big", 15, 640),
    ],
  }, // 18
];

/** The key type id in {@linkcode RICH_TYPES}. */
export const RICH_KEY = 2;
/** The value type id in {@linkcode RICH_TYPES}. */
export const RICH_VALUE = 18;

/** One value of `struct value`, numbered by `n`. */
export function richValue(n: number): Uint8Array {
  const value = new Uint8Array(96);
  const view = new DataView(value.buffer);
  view.setUint32(0, n, true);
  value.set(new TextEncoder().encode(`eth${n}`), 4);
  value[12] = n & 1;
  value[13] = 0x41 + n;
  value[14] = 0x07;
  view.setUint16(16, 443 + n, true);
  view.setUint16(18, (n & 7) | (0x1ff << 3), true); // a = n & 7, b = -1
  view.setInt32(20, n % 3 === 2 ? -1 : n % 2, true);
  view.setInt32(24, 7, true);
  view.setInt32(28, -n, true);
  view.setInt32(32, n * 2, true);
  view.setBigUint64(36, 12345678901234567890n, true);
  view.setBigUint64(44, 0xdeadbeefn * BigInt(n), true);
  view.setInt32(52, 0x41424344, true);
  view.setInt32(60, -5, true);
  view.setInt32(64, 6, true);
  view.setBigInt64(68, -9n * BigInt(n), true);
  view.setBigUint64(80, BigInt(n), true);
  view.setBigUint64(88, 2n, true);
  return value;
}
