// The backend's kernel primitives beyond bpf(): binary files, perf_event_open, ioctl, mmap and
// epoll, live against this kernel in Deno and Bun.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { type KernelPrimitives, primitivesOf, type SyscallBackend } from "../ffi/backend.ts";
import { EPOLLIN } from "../ffi/epoll.ts";
import { liveKernel } from "../ffi/kernel.ts";
import type { MappedRegion } from "../ffi/mmap.ts";
import {
  PERF_COUNT_SW_CPU_CLOCK,
  PERF_EVENT_ATTR,
  PERF_EVENT_IOC_ENABLE,
  PERF_FLAG_BITS,
  PERF_FLAG_FD_CLOEXEC,
  PERF_MMAP_PAGE,
  PERF_TYPE_SOFTWARE,
  perfEventAttr,
} from "../ffi/perf_event.ts";
import { BpfMap } from "../mod.ts";
import { liveTest } from "./helpers/live.ts";

const BPF_F_MMAPABLE = 1 << 10;
const EBADF = 9;

function live(): KernelPrimitives & SyscallBackend {
  const backend = liveKernel().backend;
  primitivesOf(backend);
  return backend as KernelPrimitives & SyscallBackend;
}

function region(result: MappedRegion | number): MappedRegion {
  assert.equal(typeof result, "object", `mmap failed: ${String(result)}`);
  return result as MappedRegion;
}

liveTest("readFile reads all of /sys/kernel/btf/vmlinux, BTF magic first", () => {
  const bytes = live().readFile("/sys/kernel/btf/vmlinux");
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint16(0, true), 0xeb9f);
  // cat: Deno's own file reads need --allow-all for /sys.
  const expected = execFileSync("cat", ["/sys/kernel/btf/vmlinux"], { maxBuffer: 1 << 26 });
  assert.equal(bytes.byteLength, expected.byteLength); // every chunk, to the last read of 0
  assert.ok(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(expected));
  assert.equal(bytes.buffer.byteLength, bytes.byteLength); // a buffer of its own
});

liveTest("readFile of a missing file is an Error with its errno code", () => {
  assert.throws(() => live().readFile("/sys/kernel/btf/no-such-module"), {
    message: "bpfmap: cannot open /sys/kernel/btf/no-such-module: ENOENT (errno 2)",
    code: "ENOENT",
    errno: 2,
  });
});

/** A cpu-clock event on CPU 0 sampling every 100 µs into a one-page ring, created disabled. */
function openClockEvent(kernel: ReturnType<typeof live>): { fd: number; ring: MappedRegion } {
  const attr = perfEventAttr(liveKernel().backend);
  const f = PERF_EVENT_ATTR.fields;
  attr.setU32(f.type, PERF_TYPE_SOFTWARE);
  attr.setU64(f.config, PERF_COUNT_SW_CPU_CLOCK);
  attr.setU64(f.sample_period, 100_000);
  attr.setU64(f.flags, PERF_FLAG_BITS.disabled);
  attr.setU32(f.wakeup_events, 1);
  const fd = kernel.perfEventOpen(attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
  assert.ok(fd > 0, `perf_event_open: ${fd}`);
  const ring = region(kernel.mmap(fd, 2 * kernel.pageSize, "readWrite", 0));
  return { fd, ring };
}

function dataHead(ring: MappedRegion): bigint {
  return new DataView(ring.bytes.buffer).getBigUint64(PERF_MMAP_PAGE.data_head, true);
}

liveTest(
  "perfEventOpen opens a disabled event that ioctl(ENABLE) starts; epoll wakes on it",
  () => {
    const kernel = live();
    const { fd, ring } = openClockEvent(kernel);
    const epfd = kernel.epollCreate();
    try {
      assert.ok(epfd > 0, `epoll_create1: ${epfd}`);
      assert.equal(kernel.epollCtl(epfd, "add", fd, EPOLLIN), 0);
      assert.deepEqual(kernel.epollWait(epfd, 4, 20), []); // disabled: no sample, no wake-up
      assert.equal(dataHead(ring), 0n);
      assert.equal(kernel.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0), 0);
      assert.deepEqual(kernel.epollWait(epfd, 4, 5000), [{ fd, events: EPOLLIN }]);
      assert.ok(dataHead(ring) > 0n, "the kernel wrote samples into the mapped ring");
      assert.equal(kernel.epollCtl(epfd, "del", fd, 0), 0);
      assert.deepEqual(kernel.epollWait(epfd, 4, 0), []);
    } finally {
      assert.equal(ring.unmap(), 0);
      assert.equal(kernel.close(fd), 0);
      assert.equal(kernel.close(epfd), 0);
    }
  },
);

liveTest(
  "epollWaitAsync resolves when the event fires, with the event loop free meanwhile",
  async () => {
    const kernel = live();
    const { fd, ring } = openClockEvent(kernel);
    const epfd = kernel.epollCreate();
    try {
      assert.equal(kernel.epollCtl(epfd, "add", fd, EPOLLIN), 0);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const waiting = kernel.epollWaitAsync(epfd, 4, 5000);
      // The loop runs timers while the wait is pending: enable the event from one of them.
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.ok(ticks > 0, "timers ran while the wait was pending");
      assert.equal(kernel.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0), 0);
      assert.deepEqual(await waiting, [{ fd, events: EPOLLIN }]);
      clearInterval(timer);
      assert.deepEqual(await kernel.epollWaitAsync(epfd, 4, 0).then((r) => typeof r), "object");
    } finally {
      ring.unmap();
      kernel.close(fd);
      kernel.close(epfd);
    }
  },
);

liveTest(
  "the primitives report -errno for a bad fd, and refuse bad arguments before any call",
  () => {
    const kernel = live();
    assert.equal(kernel.ioctl(-1, PERF_EVENT_IOC_ENABLE, 0), -EBADF);
    assert.equal(kernel.mmap(-1, 4096, "read", 0), -EBADF);
    assert.equal(kernel.epollCtl(-1, "add", 0, EPOLLIN), -EBADF);
    assert.equal(kernel.epollWait(-1, 1, 0), -EBADF);
    assert.throws(() => kernel.mmap(-1, 4096, "read", 100), {
      name: "RangeError",
      message: /offset/,
    });
    assert.throws(() => kernel.mmap(-1, 0, "read", 0), { name: "RangeError", message: /length/ });
    assert.throws(() => kernel.epollWait(-1, 0, 0), { name: "RangeError", message: /maxEvents/ });
  },
);

liveTest("mmap of a BPF_F_MMAPABLE array: updates seen in the bytes, writes seen by lookup", () => {
  const kernel = live();
  using map = BpfMap.create({
    type: "array",
    keySize: 4,
    valueSize: 8,
    maxEntries: 4,
    flags: BPF_F_MMAPABLE,
  });
  const mapped = region(kernel.mmap(map.fd, kernel.pageSize, "readWrite", 0));
  try {
    assert.equal(mapped.length, kernel.pageSize);
    const key = (i: number) => new Uint8Array(new Uint32Array([i]).buffer);
    map.update(key(2), new Uint8Array(new BigUint64Array([0x1122334455n]).buffer));
    mapped.observe(16, 8);
    const view = new DataView(mapped.bytes.buffer);
    assert.equal(view.getBigUint64(16, true), 0x1122334455n); // element 2, at 2 * 8
    // Atomics work on the mapping's buffer in both runtimes (ring buffer positions need them).
    const words = new BigUint64Array(mapped.bytes.buffer, 0, 4);
    assert.equal(Atomics.load(words, 2), 0x1122334455n);
    Atomics.store(words, 1, 77n);
    mapped.wrote(8, 8);
    assert.deepEqual(map.lookup(key(1)), new Uint8Array(new BigUint64Array([77n]).buffer));
    assert.equal(mapped.unmap(), 0);
    assert.equal(mapped.bytes.byteLength, 0); // detached: a stale read cannot fault
    assert.equal(mapped.unmap(), 0);
  } finally {
    mapped.unmap();
  }
});
