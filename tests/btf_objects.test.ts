// BTF objects as kernel objects (issue 14, item 4): listed by id (BPF_BTF_GET_NEXT_ID), taken
// over from an fd, their info (id, name, size, kernel_btf: what bpftool btf show prints), and
// what is refused: an fd of another kind (closed all the same), what is no fd (before any call),
// a closed object, and a pin, which the kernel itself refuses for BTF (so Btf has no pin()).

import assert from "node:assert/strict";
import { readBtfInfo } from "../btf/btf.ts";
import { forwardingBackend, type SyscallBackend } from "../ffi/backend.ts";
import { btfGetFdById } from "../ffi/bpf.ts";
import { Kernel } from "../ffi/kernel.ts";
import { checkPath, pinFd } from "../ffi/objects.ts";
import {
  BpfMap,
  Btf,
  type BtfType,
  encodeBtf,
  listBtfIds,
  Program,
  readBtfObjectInfo,
  specOf,
  u32,
  u64,
} from "../mod.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import { exit, mov64Imm, program } from "./helpers/insns.ts";
import { liveTest, tallyingKernel, thrown, throwsBpf } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const bpffs = bpffsForTests("bpfmap-btf-objects-");
const transcriptTest = transcriptTests(import.meta.url, { paths: () => ({ BPFFS: bpffs() }) });

/** Two types, INT and FLOAT, and their names ("\0u32\0double\0"). */
const TYPES: BtfType[] = [
  { kind: "int", name: "u32", size: 4, bits: 32, bitOffset: 0, encoding: "unsigned" },
  { kind: "float", name: "double", size: 8 },
];

/** A kernel on `backend`, recording every fd it closes. */
function closingKernel(backend: SyscallBackend): { kernel: Kernel; closed: number[] } {
  const closed: number[] = [];
  const closing = Object.assign(forwardingBackend(() => backend), {
    close: (fd: number) => {
      closed.push(fd);
      return backend.close(fd);
    },
  });
  return { kernel: new Kernel(closing, { closesLeakedFds: false }), closed };
}

// Live only: the list holds every BTF object on the machine, other runs' included.
liveTest(
  "listBtfIds: the kernel's BTF first, each BTF loaded, ascending; a closed one goes",
  () => {
    const first = Btf.load(TYPES);
    const second = Btf.load(TYPES);
    const ids = listBtfIds();
    assert.deepEqual(ids, ids.toSorted((a, b) => a - b));
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ids.includes(first.id) && ids.includes(second.id), `${ids} lacks ours`);
    // vmlinux's BTF is loaded at boot, before any other: id 1.
    assert.equal(ids[0], 1);
    second.close();
    // A BTF object nothing else holds is freed with its last fd, and its id with it.
    assert.ok(!listBtfIds().includes(second.id));
    assert.ok(listBtfIds().includes(first.id));
    first.close();
    assert.ok(!listBtfIds().includes(first.id));
  },
);

// Reads a BTF fd's fdinfo (fromFd's kind check): a transcript writes its btf_id as the virtual
// id, so the test verifies and replays like any other.
transcriptTest("fromFd takes a BTF fd over: the same object and types, closed by it", (sys) => {
  const { kernel, closed } = closingKernel(sys.kernel.backend);
  using loaded = Btf.load(TYPES, {}, kernel);
  const fd = btfGetFdById(kernel, loaded.id);
  assert.ok(fd >= 0, `BPF_BTF_GET_FD_BY_ID: ${fd}`);
  const adopted = Btf.fromFd(fd, kernel);
  assert.deepEqual([adopted.fd, adopted.id, adopted.name], [fd, loaded.id, ""]);
  assert.deepEqual(adopted.types, loaded.types);
  assert.deepEqual(closed, []);
  adopted.close();
  adopted.close(); // harmless
  assert.deepEqual(closed, [fd]);
  assert.equal(adopted.fd, -1);
  // A BTF fd is neither a map nor a program: each refuses it, naming its kind, and closes it.
  for (const open of [BpfMap.fromFd, Program.fromFd]) {
    const other = btfGetFdById(kernel, loaded.id);
    const error = thrown(() => open(other, kernel));
    assert.ok(error instanceof TypeError, String(error));
    assert.match(error.message, /^fd \d+: incorrect object type: btf, not a (map|program)$/);
    assert.equal(closed.at(-1), other);
  }
});

transcriptTest(
  "fromFd refuses a map's and a program's fd, naming the kind, and closes it",
  (sys) => {
    const { kernel, closed } = closingKernel(sys.kernel.backend);
    const map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 }, kernel);
    const mapFd = map.fd;
    assert.throws(() => Btf.fromFd(mapFd, kernel), {
      name: "TypeError",
      message: `fd ${mapFd}: incorrect object type: map, not a BTF object`,
    });
    assert.deepEqual(closed, [mapFd]); // taken over, so closed on refusal too
    const prog = Program.load(
      { type: "socket_filter", instructions: program(mov64Imm(0, 0), exit()), license: "GPL" },
      kernel,
    );
    const progFd = prog.fd;
    assert.throws(() => Btf.fromFd(progFd, kernel), {
      name: "TypeError",
      message: `fd ${progFd}: incorrect object type: prog, not a BTF object`,
    });
    assert.deepEqual(closed, [mapFd, progFd]);
  },
);

transcriptTest("fromFd refuses what is no fd before any call", (sys) => {
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  for (const fd of [-1, 1.5, 2 ** 31, "3" as unknown as number]) {
    const error = thrown(() => Btf.fromFd(fd, kernel));
    assert.ok(error instanceof TypeError || error instanceof RangeError, String(error));
    assert.match(error.message, /^fd must be/);
  }
  assert.equal(calls(), 0);
});

transcriptTest("info(): id, name, size and kernel_btf, as bpftool btf show prints them", (sys) => {
  // The kernel's BTF first: its blob is megabytes, which info() leaves in the kernel.
  const vmlinuxFd = btfGetFdById(sys.kernel, 1);
  assert.ok(vmlinuxFd >= 0, `BPF_BTF_GET_FD_BY_ID 1: ${vmlinuxFd}`);
  const vmlinux = readBtfObjectInfo(sys.kernel, vmlinuxFd);
  sys.kernel.close(vmlinuxFd);
  assert.deepEqual([vmlinux.name, vmlinux.kernelBtf], ["vmlinux", true]);
  assert.ok(vmlinux.size > 1 << 20, `vmlinux BTF of ${vmlinux.size} bytes`);
  const loaded = sys.loadBtf(TYPES);
  // The size is the blob's as loaded: header, INT (12 bytes and its u32 of bits), FLOAT, names.
  assert.equal(encodeBtf(TYPES).byteLength, 24 + 16 + 12 + 12);
  assert.deepEqual(loaded.info(), { id: loaded.id, name: "", size: 64, kernelBtf: false });
  assert.notEqual(loaded.id, vmlinux.id);
  // A map's BTF, opened by the id its info gives.
  const map = sys.createMap(
    specOf({ type: "hash", key: u32, value: u64, maxEntries: 1, btf: true }),
  );
  const ofMap = sys.btfFromId(map.info().btfId);
  const info = ofMap.info();
  assert.deepEqual(
    [info.id, info.name, info.kernelBtf, info.size],
    [map.info().btfId, "", false, readBtfInfo(sys.kernel, ofMap.fd).blob.byteLength],
  );
  loaded.close();
  assert.throws(() => loaded.info(), {
    name: "TypeError",
    message: `info: BTF object (id ${loaded.id}) is closed`,
  });
});

transcriptTest("the kernel pins no BTF object (EINVAL): why Btf has no pin()", (sys) => {
  const btf = sys.loadBtf(TYPES);
  const path = `${bpffs()}/btf`;
  throwsBpf(
    () => pinFd(sys.kernel, btf.fd, checkPath(path), `${btf} at ${path}`),
    "EINVAL",
    "BPF_OBJ_PIN",
  );
  assert.equal(String(btf), `BTF object (id ${btf.id})`);
  assert.equal("pin" in btf, false);
  assert.equal("openPinned" in Btf, false);
});
