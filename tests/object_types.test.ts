// BpfMap.openPinned and BpfMap.fromFd on objects that are not maps: a pinned
// program (tests/bpf/maps.bpf.c, loaded and pinned by bpftool) is refused
// with a TypeError naming the path and its kind, as bpftool's "incorrect
// object type", and its fd is closed. The kernel's info call answers for a
// program too, so without the check it read as a map of nonsense sizes.
// Recorded live, so it replays anywhere.

import assert from "node:assert/strict";
import { forwardingBackend } from "../ffi/backend.ts";
import { BPF_OBJ_GET } from "../ffi/commands.ts";
import { cString } from "../ffi/memory.ts";
import { BpfMap, type BpfSystem, Kernel } from "../mod.ts";
import { clangTests } from "./helpers/clang_object.ts";
import { thrown } from "./helpers/live.ts";

const { clangTest, bpffs } = clangTests(import.meta.url, "bpfmap-object-types-");

/** The system's kernel, telling which fds it closed. */
function closingKernel(system: BpfSystem): { kernel: Kernel; closed: number[] } {
  const backend = system.kernel.backend;
  const closed: number[] = [];
  const closing = Object.assign(forwardingBackend(() => backend), {
    close: (fd: number) => {
      closed.push(fd);
      return backend.close(fd);
    },
  });
  const kernel = new Kernel(closing, { closesLeakedFds: false });
  return { kernel, closed };
}

/** Asserts `error` is the refusal of a program at `source`. */
function assertNotAMap(error: unknown, source: string): void {
  assert.ok(error instanceof TypeError, String(error));
  assert.match(error.message, /^(.*): incorrect object type: prog \(prog_type \d+\), not a map$/);
  assert.equal(error.message.slice(0, source.length + 2), `${source}: `);
}

clangTest(
  "openPinned on a pinned program: a TypeError naming the path, its fd closed",
  (system) => {
    const { kernel, closed } = closingKernel(system);
    const path = `${bpffs()}/prog`;
    assertNotAMap(thrown(() => BpfMap.openPinned(path, {}, kernel)), path);
    assert.equal(closed.length, 1); // the program's fd, opened by BPF_OBJ_GET
    // The maps beside it still open as maps.
    using flows = BpfMap.openPinned(`${bpffs()}/maps/flows`, {}, kernel);
    assert.deepEqual([flows.typeName, flows.keySize, flows.valueSize], ["hash", 8, 32]);
  },
);

clangTest("fromFd on a program's fd: a TypeError naming the fd, which is closed", (system) => {
  const { kernel, closed } = closingKernel(system);
  const attr = kernel.attr(BPF_OBJ_GET);
  attr.clear();
  attr.setPointer(BPF_OBJ_GET.fields.pathname, cString(`${bpffs()}/prog`));
  const fd = kernel.callOrThrow(attr);
  assertNotAMap(thrown(() => BpfMap.fromFd(fd, kernel)), `fd ${fd}`);
  assert.deepEqual(closed, [fd]); // taken over, so closed on refusal too
});

clangTest("fromFd takes a map's fd over: the map closes it", (system) => {
  const { kernel, closed } = closingKernel(system);
  const attr = kernel.attr(BPF_OBJ_GET);
  attr.clear();
  attr.setPointer(BPF_OBJ_GET.fields.pathname, cString(`${bpffs()}/maps/flows`));
  const fd = kernel.callOrThrow(attr);
  const map = BpfMap.fromFd(fd, kernel);
  assert.equal(map.fd, fd);
  assert.deepEqual([map.typeName, map.keySize, map.valueSize], ["hash", 8, 32]);
  assert.equal(map.lookup(new Uint8Array([10, 0, 0, 1, 0, 80, 6, 0]))?.[8], 5); // bpftool's element
  map.close();
  assert.deepEqual(closed, [fd]);
});

clangTest("fromFd refuses what is no fd before any syscall", (system) => {
  for (const fd of [-1, 1.5, 2 ** 31]) {
    const error = thrown(() => BpfMap.fromFd(fd, system.kernel));
    assert.ok(error instanceof TypeError || error instanceof RangeError, String(error));
    assert.match(error.message, /^fd must be/);
  }
});
