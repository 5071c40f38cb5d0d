// The backend's kernel primitives beyond bpf(): binary files, perf_event_open, ioctl, mmap and
// epoll, against this kernel in Deno and Bun, recorded, and replayed with no FFI; a replay that
// diverges names the entry.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import process from "node:process";
import { test } from "node:test";
import { Attr } from "../ffi/attr.ts";
import { type KernelPrimitives, primitivesOf, type SyscallBackend } from "../ffi/backend.ts";
import { BPF_MAP_FREEZE } from "../ffi/commands.ts";
import { EPOLLIN } from "../ffi/epoll.ts";
import { liveKernel } from "../ffi/kernel.ts";
import type { MappedRegion } from "../ffi/mmap.ts";
import {
  PERF_COUNT_SW_BPF_OUTPUT,
  PERF_COUNT_SW_CPU_CLOCK,
  PERF_EVENT_ATTR,
  PERF_EVENT_IOC_ENABLE,
  PERF_FLAG_BITS,
  PERF_FLAG_FD_CLOEXEC,
  PERF_MMAP_PAGE,
  PERF_TYPE_SOFTWARE,
  perfEventAttr,
} from "../ffi/perf_event.ts";
import { type BpfSystem, openSystem, ReplayDivergenceError } from "../mod.ts";
import { liveTest } from "./helpers/live.ts";
import { fixturePath, transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

const BPF_F_MMAPABLE = 1 << 10;
const EBADF = 9;

type Primitives = KernelPrimitives & SyscallBackend;

function primitives(backend: SyscallBackend): Primitives {
  primitivesOf(backend);
  return backend as Primitives;
}

function region(result: MappedRegion | number): MappedRegion {
  assert.equal(typeof result, "object", `mmap failed: ${String(result)}`);
  return result as MappedRegion;
}

liveTest("readFile reads all of /sys/kernel/btf/vmlinux, to the last chunk", () => {
  const bytes = primitives(liveKernel().backend).readFile("/sys/kernel/btf/vmlinux");
  // cat: Deno's own file reads need --allow-all for /sys.
  const expected = execFileSync("cat", ["/sys/kernel/btf/vmlinux"], { maxBuffer: 1 << 26 });
  assert.equal(bytes.byteLength, expected.byteLength);
  assert.ok(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(expected));
  assert.equal(bytes.buffer.byteLength, bytes.byteLength); // a buffer of its own
});

transcriptTest("readFile of a missing file is an Error with its errno code", (system) => {
  assert.throws(() => primitives(system.kernel.backend).readFile("/sys/kernel/btf/no-such"), {
    message: "bpfmap: cannot open /sys/kernel/btf/no-such: ENOENT (errno 2)",
    code: "ENOENT",
    errno: 2,
    syscall: "open",
  });
});

/** A cpu-clock event on CPU 0 sampling every 100 µs into a one-page ring, created disabled. */
function openClockEvent(kernel: Primitives): { fd: number; ring: MappedRegion } {
  const attr = perfEventAttr(kernel);
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
  ring.observe(PERF_MMAP_PAGE.data_head, 8);
  return new DataView(ring.bytes.buffer).getBigUint64(PERF_MMAP_PAGE.data_head, true);
}

transcriptTest(
  "perfEventOpen opens a disabled event; ioctl(ENABLE) starts it; epoll wakes",
  (system) => {
    const kernel = primitives(system.kernel.backend);
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
      assert.equal(ring.bytes.byteLength, 0); // detached: a stale read cannot fault
      assert.equal(kernel.close(fd), 0);
      assert.equal(kernel.close(epfd), 0);
    }
  },
);

transcriptTest(
  "epollWaitAsync resolves when the event fires; timers run meanwhile",
  async (system) => {
    const kernel = primitives(system.kernel.backend);
    const { fd, ring } = openClockEvent(kernel);
    const epfd = kernel.epollCreate();
    try {
      assert.equal(kernel.epollCtl(epfd, "add", fd, EPOLLIN), 0);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const waiting = kernel.epollWaitAsync(epfd, 4, 5000);
      await new Promise((resolve) => setTimeout(resolve, 30));
      clearInterval(timer);
      assert.ok(ticks > 0, "timers ran while the wait was pending");
      assert.equal(kernel.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0), 0);
      assert.deepEqual(await waiting, [{ fd, events: EPOLLIN }]);
    } finally {
      ring.unmap();
      kernel.close(fd);
      kernel.close(epfd);
    }
  },
);

transcriptTest(
  "the primitives return -errno for a bad fd, and refuse bad arguments first",
  (system) => {
    const kernel = primitives(system.kernel.backend);
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
    const bpfAttr = new Attr(BPF_MAP_FREEZE, kernel);
    assert.throws(() => kernel.perfEventOpen(bpfAttr as never, -1, 0, -1, 0), {
      name: "TypeError",
      message: /^perfEventOpen: attr must be a perf_event_attr/,
    });
    assert.throws(() => kernel.perfEventOpen(perfEventAttr(kernel), -2, 0, -1, 0), {
      name: "RangeError",
      message: "perfEventOpen: pid must be between -1 and 2147483647, got -2",
    });
    assert.throws(() => kernel.ioctl(3, -1, 0), { name: "RangeError", message: /ioctl: request/ });
    assert.throws(() => kernel.epollCtl(3, "mod" as "add", 4, 1), { name: "TypeError" });
    assert.throws(() => kernel.mmap(3, 4096, "write" as "read", 0), { name: "TypeError" });
    assert.throws(() => kernel.readFile(""), { name: "TypeError", message: /readFile: path/ });
  },
);

const key = (i: number) => new Uint8Array(new Uint32Array([i]).buffer);
const u64 = (n: bigint) => new Uint8Array(new BigUint64Array([n]).buffer);

/**
 * An mmap-able array seen through its mapping and through lookups; `variant` changes what the
 * code asks (for the divergence tests below).
 */
function mmapSession(
  system: BpfSystem,
  variant: { length?: number; wroteAt?: number } = {},
): void {
  const kernel = primitives(system.kernel.backend);
  using map = system.createMap({
    type: "array",
    keySize: 4,
    valueSize: 8,
    maxEntries: 4,
    flags: BPF_F_MMAPABLE,
  });
  const mapped = region(kernel.mmap(map.fd, variant.length ?? kernel.pageSize, "readWrite", 0));
  try {
    map.update(key(2), u64(0x1122334455n));
    mapped.observe(16, 8);
    const view = new DataView(mapped.bytes.buffer);
    assert.equal(view.getBigUint64(16, true), 0x1122334455n); // element 2, at 2 * 8
    // Atomics work on the mapping's buffer in both runtimes (ring positions need them).
    const words = new BigUint64Array(mapped.bytes.buffer, 0, 4);
    assert.equal(Atomics.load(words, 2), 0x1122334455n);
    Atomics.store(words, 1, 77n);
    mapped.wrote(variant.wroteAt ?? 8, 8);
    assert.deepEqual(map.lookup(key(1)), u64(77n));
  } finally {
    assert.equal(mapped.unmap(), 0);
  }
  assert.equal(mapped.unmap(), 0); // idempotent
  assert.throws(() => mapped.observe(0, 8), { name: "TypeError", message: /was unmapped/ });
}

transcriptTest(
  "mmap of a BPF_F_MMAPABLE array: updates seen in the bytes, writes by lookup",
  (s) => {
    mmapSession(s);
  },
);

const MMAP_FIXTURE = fixturePath(
  import.meta.url,
  "mmap of a BPF_F_MMAPABLE array: updates seen in the bytes, writes by lookup",
);

/** Replays the mmap fixture with `variant`, expecting a divergence; returns its message. */
async function divergence(variant: { length?: number; wroteAt?: number }): Promise<string> {
  const system = await openSystem({
    transcript: MMAP_FIXTURE,
    mode: "replay",
    modeFromEnvironment: false,
  });
  const error = await system.run((s) => mmapSession(s, variant)).then(() => undefined, (e) => e);
  assert.ok(error instanceof ReplayDivergenceError, String(error));
  return error.message;
}

test("a replay that mmaps another length diverges at that mmap, named", async () => {
  const message = await divergence({ length: 8192 });
  assert.match(message, /call #\d+ \(mmap\(handle 1, 8192 bytes at 0\)\) diverged/);
  assert.match(message, /- length: expected 4096, got 8192/);
});

test("a replay that writes another position diverges at that write, named", async () => {
  const message = await divergence({ wroteAt: 16 });
  assert.match(message, /call #\d+ \(wrote\(mapping 1, 8 bytes at 16\)\) diverged/);
  assert.match(message, /- offset: expected 8, got 16/);
});

liveTest("epollWaitAsync: two waits at once both answer; a timed-out one answers []", async () => {
  const kernel = primitives(liveKernel().backend);
  const events = [openClockEvent(kernel), openClockEvent(kernel)];
  const epfds = events.map(() => kernel.epollCreate());
  try {
    events.forEach(({ fd }, i) => assert.equal(kernel.epollCtl(epfds[i]!, "add", fd, EPOLLIN), 0));
    assert.deepEqual(await kernel.epollWaitAsync(epfds[0]!, 4, 30), []); // nothing enabled: timed out
    const waits = epfds.map((epfd) => kernel.epollWaitAsync(epfd, 4, 5000));
    for (const { fd } of events) assert.equal(kernel.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0), 0);
    assert.deepEqual(await Promise.all(waits), events.map(({ fd }) => [{ fd, events: EPOLLIN }]));
  } finally {
    for (const { fd, ring } of events) {
      ring.unmap();
      kernel.close(fd);
    }
    for (const epfd of epfds) kernel.close(epfd);
  }
});

liveTest("a process whose waits have answered exits: no wait thread keeps it alive", () => {
  const live = new URL("../ffi/live.ts", import.meta.url).href;
  const script = `import { openLiveBackend } from ${JSON.stringify(live)};
    const backend = openLiveBackend();
    const epfd = backend.epollCreate();
    console.log(JSON.stringify(await backend.epollWaitAsync(epfd, 1, 10)));`;
  const bun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
  const args = bun ? ["-e", script] : ["eval", "--allow-ffi", script];
  const out = execFileSync(process.execPath, args, { timeout: 20_000, encoding: "utf8" });
  assert.equal(out.trim(), "[]");
});

transcriptTest("a perf event array's values are perf event fds: recorded as handles", (system) => {
  const kernel = primitives(system.kernel.backend);
  const attr = perfEventAttr(kernel);
  attr.setU32(PERF_EVENT_ATTR.fields.type, PERF_TYPE_SOFTWARE);
  attr.setU64(PERF_EVENT_ATTR.fields.config, PERF_COUNT_SW_BPF_OUTPUT);
  attr.setU32(PERF_EVENT_ATTR.fields.wakeup_events, 1);
  const fd = kernel.perfEventOpen(attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
  assert.ok(fd > 0, `perf_event_open: ${fd}`);
  try {
    using map = system.createMap({
      type: "perf_event_array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
    });
    // Replayed, the fd is the player's (1000 and up): it matches because both are handle 1.
    map.update(key(0), new Uint8Array(new Uint32Array([fd]).buffer));
    assert.equal(map.delete(key(0)), true);
  } finally {
    assert.equal(kernel.close(fd), 0);
  }
});
