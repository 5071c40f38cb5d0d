// Initial values of maps of maps and prog_arrays (issue 14, part 1): tests/bpf/loader_values.bpf.c
// names inner maps in the `.values` of an array and a hash of maps, loader_tail_calls.bpf.c a
// program in a prog_array's. The loader creates each inner map's template first (inner_map_fd),
// fills the maps' slots once the maps exist and the prog_array's once the programs are loaded, as
// libbpf does: test runs read through the slots, and bpftool shows the same slots in the maps
// libbpf loads from the files.

import assert from "node:assert/strict";
import { BpfObject, ObjectFormatError } from "../mod.ts";
import { u32 } from "./helpers/bytes.ts";
import { thrown } from "./helpers/live.ts";
import {
  assertLikeLibbpf,
  bpftool,
  kernelToolTest,
  objectFixture,
  withLibbpfLoaded,
} from "./helpers/loader_object.ts";
import { CLANG_NEEDS, compileText } from "./helpers/object_build.ts";
import { toolTest } from "./helpers/tools.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const valuesObject = objectFixture(import.meta.url, "loader_values.bpf.c");
const tailCallsObject = objectFixture(import.meta.url, "loader_tail_calls.bpf.c");
/** What the programs return for an empty slot (see the source). */
const NO_MAP = 100;
const NO_PROGRAM = 50;
const TAIL_ONE = 51;

/** A packet whose first byte, the programs' key, is `key`. */
const packet = (key: number) => {
  const bytes = new Uint8Array(64);
  bytes[0] = key;
  return bytes;
};

transcriptTest("maps of maps hold the inner maps their .values name", (sys) => {
  const object = sys.loadObject(valuesObject(), { name: "values" });
  // The kernel took the object's BTF: its .maps DATASEC has its variables at their symbols'
  // offsets (clang leaves them all at 0 here, which the kernel refuses).
  assert.equal(object.btfRefused, undefined);
  const map = (name: string) => object.maps.get(name)!;
  map("inner_a").update(u32(0), u32(5));
  map("inner_b").update(u32(0), u32(7));
  const run = (program: string) =>
    [0, 1, 2, 3].map((key) => object.programs.get(program)!.testRun({ data: packet(key) }).retval);
  // outer = { [0] = &inner_a, [2] = &inner_b }; outer_hash = { [3] = &inner_b }
  assert.deepEqual(run("read_outer"), [5, NO_MAP, 7, NO_MAP]);
  assert.deepEqual(run("read_outer_hash"), [NO_MAP, NO_MAP, NO_MAP, 7]);
  // A lookup from user space gives the ids of the maps the slots hold.
  const slots = (name: string) => [...map(name).entries()];
  assert.deepEqual(slots("outer"), [
    [u32(0), u32(map("inner_a").id)],
    [u32(2), u32(map("inner_b").id)],
  ]);
  assert.deepEqual(slots("outer_hash"), [[u32(3), u32(map("inner_b").id)]]);
  // The inner maps' templates served their creation only: the object keeps the maps it declares.
  assert.deepEqual([...object.maps.keys()], ["inner_a", "inner_b", "outer", "outer_hash"]);
});

transcriptTest("a prog_array holds the program its .values name, once the programs are loaded", (
  sys,
) => {
  const object = sys.loadObject(tailCallsObject(), { name: "tails" });
  const jump = object.programs.get("jump")!;
  // jumps = { [1] = &tail_one }: a tail call there returns what tail_one returns.
  assert.deepEqual(
    [0, 1, 2, 3].map((key) => jump.testRun({ data: packet(key) }).retval),
    [NO_PROGRAM, TAIL_ONE, NO_PROGRAM, NO_PROGRAM],
  );
  // A lookup from user space gives the id of the program the slot holds.
  assert.deepEqual(
    object.maps.get("jumps")!.lookup(u32(1)),
    u32(object.programs.get("tail_one")!.info().id),
  );
});

transcriptTest("a prog_array slot whose program is not loaded fails the load, naming it", (sys) => {
  const object = sys.openObject(tailCallsObject(), { name: "tails" });
  object.program("tail_one").autoload = false;
  const error = thrown(() => object.load());
  assert.ok(error instanceof TypeError, String(error));
  assert.match(error.message, /map 'jumps': slot 1 holds program 'tail_one', which is not loaded/);
  // What was created is closed.
  assert.equal(object.maps.get("jumps")!.closed, true);
  assert.equal(object.programs.get("jump")!.closed, true);
});

toolTest(
  "a .values slot naming something else is refused when the object is opened",
  CLANG_NEEDS,
  () => {
    const maps = `
    struct inner { int (*type)[2]; int (*max_entries)[1]; int *key; int *value; };
    int not_a_map;
    struct {
      int (*type)[12]; int (*max_entries)[2]; int *key; struct inner *values[];
    } outer __attribute__((section(".maps"), used)) = { .values = { [1] = (void *)&not_a_map } };`;
    assert.throws(
      () => BpfObject.open(compileText(maps, ["-g"])),
      (error) =>
        error instanceof ObjectFormatError
        && /map 'outer': slot 1 names 'not_a_map', which is no other map of \.maps/.test(
          error.message,
        ),
    );
  },
);

/**
 * The slots of a map of maps or prog_array, as bpftool dumps them, each
 * with the name of the map or program whose id it holds.
 */
function namedSlots(kind: "map" | "prog", ...map: string[]): [number, string][] {
  const dump = JSON.parse(bpftool("-j", "map", "dump", ...map)) as {
    key: string[];
    value: string[];
  }[];
  const word = (bytes: string[]) => new DataView(new Uint8Array(bytes.map(Number)).buffer);
  return dump.map(({ key, value }) => [
    word(key).getUint32(0, true),
    JSON.parse(bpftool("-j", kind, "show", "id", String(word(value).getUint32(0, true)))).name,
  ]);
}

for (const source of ["loader_values.bpf.c", "loader_tail_calls.bpf.c"]) {
  kernelToolTest(`${source}: maps, slots and programs are the ones libbpf loads from it`, () => {
    withLibbpfLoaded(source, (path, bpffs) => {
      using object = BpfObject.open(path).load();
      assertLikeLibbpf(object, bpffs);
      // libbpf fills the slots with the maps and programs we fill them with.
      for (const [name, map] of object.maps) {
        const { typeName } = map.info();
        if (!typeName.endsWith("_of_maps") && typeName !== "prog_array") continue;
        const kind = typeName === "prog_array" ? "prog" : "map";
        const ours = namedSlots(kind, "id", String(map.id));
        assert.deepEqual(ours, namedSlots(kind, "pinned", `${bpffs}/maps/${name}`), name);
        assert.ok(ours.length > 0, name);
      }
    });
  });
}
