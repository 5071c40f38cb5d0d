// .kconfig externs (issue 14, part 1): tests/bpf/loader_kconfig.bpf.c declares CONFIG_* externs of
// each kind libbpf fills (bool, enum libbpf_tristate, int, unsigned short, char array) and a weak
// one no config sets. The loader reads the running kernel's config (/boot/config-<release>, else
// /proc/config.gz) through the backend, as libbpf does, and fills the .kconfig map with what it
// says: the programs return what they read, the map holds it at each extern's offset.

import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { forwardingBackend, primitivesOf } from "../ffi/backend.ts";
import { Kernel, liveKernel } from "../ffi/kernel.ts";
import { BpfObject } from "../mod.ts";
import { liveTest } from "./helpers/live.ts";
import { kernelToolTest, objectFixture } from "./helpers/loader_object.ts";
import { compileText } from "./helpers/object_build.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const kconfigObject = objectFixture(import.meta.url, "loader_kconfig.bpf.c");
const packet = new Uint8Array(64);

transcriptTest("CONFIG_* externs hold the running kernel's config, a weak unset one 0", (sys) => {
  const object = sys.loadObject(kconfigObject(), { name: "kconfig" });
  // The kernel took the object's BTF: .kconfig's variables at their offsets in the map, sorted.
  assert.equal(object.btfRefused, undefined);
  // What the config says, read as the loader reads it (a second read of the recorded file).
  const text = new TextDecoder().decode(
    gunzipSync(primitivesOf(sys.kernel.backend).readFile("/proc/config.gz")),
  );
  const config = (name: string) => new RegExp(`^${name}=(.*)$`, "m").exec(text)?.[1];
  assert.deepEqual([config("CONFIG_BPF"), config("CONFIG_NET")], ["y", "y"]);
  const hz = Number(config("CONFIG_HZ"));
  const cpus = Number(config("CONFIG_NR_CPUS"));
  const localVersion = JSON.parse(config("CONFIG_LOCALVERSION")!) as string;
  assert.equal(config("CONFIG_NO_SUCH_OPTION"), undefined);

  const run = (name: string) => object.programs.get(name)!.testRun({ data: packet }).retval;
  assert.equal(run("hz"), hz); // and CONFIG_BPF is true, CONFIG_NET TRI_YES, the weak one 0
  assert.equal(run("cpus"), cpus | (localVersion.charCodeAt(0) || 0) << 16);
  // Each at its offset in the map, laid out as libbpf lays them out.
  const value = object.maps.get(".kconfig")!.lookup(new Uint8Array(4))!;
  const view = new DataView(value.buffer, value.byteOffset);
  const at = (name: string) => object.spec.externs.find((e) => e.name === name)!.offset;
  assert.deepEqual(
    [
      view.getUint8(at("CONFIG_BPF")),
      view.getUint32(at("CONFIG_NET"), true),
      view.getInt32(at("CONFIG_HZ"), true),
      view.getUint16(at("CONFIG_NR_CPUS"), true),
      view.getInt32(at("CONFIG_NO_SUCH_OPTION"), true),
    ],
    [1, 1, hz, cpus, 0],
  );
  const chars = value.subarray(at("CONFIG_LOCALVERSION"), at("CONFIG_LOCALVERSION") + 16);
  assert.equal(new TextDecoder().decode(chars.subarray(0, chars.indexOf(0))), localVersion);
});

kernelToolTest("a CONFIG_* extern the config does not set, or cannot fit, fails the load", () => {
  // [extern's declaration, its name, the error]; f() reads the extern's first byte.
  const cases = [
    [
      "int CONFIG_NO_SUCH_OPTION",
      "CONFIG_NO_SUCH_OPTION",
      /extern 'CONFIG_NO_SUCH_OPTION': the running kernel's config does not set it; declare it __weak/,
    ],
    [
      "unsigned char CONFIG_NR_CPUS[2]",
      "CONFIG_NR_CPUS",
      /CONFIG_NR_CPUS': the kernel's value \d+ is a number/,
    ],
    [
      "int CONFIG_LOCALVERSION",
      "CONFIG_LOCALVERSION",
      /CONFIG_LOCALVERSION': the kernel's value ".*" is a string/,
    ],
    [
      "int LINUX_HAS_NOTHING",
      "LINUX_HAS_NOTHING",
      /only LINUX_KERNEL_VERSION and CONFIG_\* externs/,
    ],
  ] as const;
  for (const [declaration, name, message] of cases) {
    const object = BpfObject.open(compileText(`
      extern ${declaration} __attribute__((section(".kconfig")));
      __attribute__((section("tc"), used)) int f(void *ctx) { return *(char *)&${name}; }
      char LICENSE[] __attribute__((section("license"), used)) = "GPL";`));
    assert.throws(() => object.load(), message, declaration);
  }
});

liveTest("a kernel config that cannot be read fails the load with both files' reasons", () => {
  // A backend whose /boot config is unreadable (EACCES) and that has no /proc/config.gz: the
  // error names both, since the fixes differ (permissions; CONFIG_IKCONFIG_PROC).
  const live = liveKernel().backend;
  const refuse = (path: string, code: string) =>
    Object.assign(new Error(`bpfmap: cannot open ${path}: ${code}`), { code });
  const backend = Object.assign(forwardingBackend(() => live), {
    readTextFile: (path: string) =>
      path === "/proc/sys/kernel/osrelease" ? "6.1.0-test\n" : live.readTextFile(path),
    readFile(path: string): Uint8Array {
      if (path === "/boot/config-6.1.0-test") throw refuse(path, "EACCES");
      if (path === "/proc/config.gz") throw refuse(path, "ENOENT");
      return live.readFile(path);
    },
  });
  const object = BpfObject.open(kconfigObject(), { name: "kconfig", kernel: new Kernel(backend) });
  assert.throws(() => object.load(), {
    name: "TypeError",
    message:
      /neither \/boot\/config-6\.1\.0-test nor \/proc\/config\.gz .*: bpfmap: cannot open \/boot\/config-6\.1\.0-test: EACCES; bpfmap: cannot open \/proc\/config\.gz: ENOENT$/,
  });
});
