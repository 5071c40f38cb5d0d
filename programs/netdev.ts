/**
 * Network devices by name, for the attach calls that take an ifindex (XDP,
 * tcx): what libc's `if_nametoindex` answers, read from sysfs through the
 * kernel's backend, so that a transcript records it and a replay serves it.
 *
 * @module
 */

import { primitivesOf } from "../ffi/backend.ts";
import { BpfError } from "../ffi/errors.ts";
import { type Kernel, liveKernel } from "../ffi/kernel.ts";
import { checkInteger, describe } from "../ffi/validate.ts";

/** `ENODEV`: `if_nametoindex`'s errno for a name no device has. */
const ENODEV = 19;
/** `IFNAMSIZ`: a device name's bytes, its NUL included. */
const IFNAMSIZ = 16;
const encoder = new TextEncoder();

/**
 * The index of network device `name` (`"lo"`, `"eth0"`), as `ip link` and
 * libc's `if_nametoindex` give it: read from `/sys/class/net/NAME/ifindex`
 * through the kernel's backend (no runtime permission beyond FFI; recorded
 * and replayed). The namespace is the one that sysfs was mounted in: the
 * process's own on a usual system. A name the kernel cannot give a device
 * (empty, over 15 bytes, `.`, `..`, a `/`, `:` or space, as its
 * `dev_valid_name` says) is refused before any call.
 *
 * @throws {TypeError} for a name no device can have.
 * @throws {BpfError} `ENODEV` (op `if_nametoindex`) when no device has it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfError, ifindex } from "../mod.ts";
 *
 * assert.equal(ifindex("lo"), 1); // loopback is 1 in every network namespace
 * assert.throws(() => ifindex("nosuchdevice0"), (error) =>
 *   error instanceof BpfError && error.code === "ENODEV"
 *   && error.message.endsWith("no network device 'nosuchdevice0'"));
 * assert.throws(() => ifindex("../lo"), TypeError); // no '/': refused before any read
 * ```
 */
export function ifindex(name: string, kernel: Kernel = liveKernel()): number {
  if (
    typeof name !== "string" || name === "." || name === ".." || /[/:\t\n\v\f\r \0]/.test(name)
    || name === "" || encoder.encode(name).byteLength >= IFNAMSIZ
  ) {
    throw new TypeError(
      `name: expected a network device name (1 to ${
        IFNAMSIZ - 1
      } bytes, not . or .., no '/', ':' or space), got ${describe(name)}`,
    );
  }
  const path = `/sys/class/net/${name}/ifindex`;
  let text: string;
  try {
    text = new TextDecoder().decode(primitivesOf(kernel.backend).readFile(path));
  } catch (error) {
    if ((error as { code?: unknown }).code !== "ENOENT") throw error;
    throw new BpfError("if_nametoindex", ENODEV, `no network device '${name}'`);
  }
  const index = Number(text.trim());
  if (!Number.isInteger(index) || index < 1) {
    throw new Error(`${path}: expected a positive ifindex, got ${JSON.stringify(text)}`);
  }
  return index;
}

/**
 * An attach call's device, checked before any call: a name, or an ifindex
 * (a positive integer). A name of digits only is refused as an index given
 * as text (`"2"` from a command line): a number says which is meant.
 *
 * @throws {TypeError} for an index that is not an integer, or a string of digits.
 * @throws {RangeError} for an index below 1 or above 2^31 - 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDevice } from "./netdev.ts";
 *
 * assert.equal(checkDevice("eth0"), "eth0");
 * assert.equal(checkDevice(2), 2);
 * assert.throws(() => checkDevice("2"), { message: 'ifindex must be an integer, got "2"' });
 * ```
 */
export function checkDevice(device: string | number): string | number {
  if (typeof device === "string" && !/^[0-9]+$/.test(device)) return device;
  return checkInteger(device, "ifindex", 1, 0x7fff_ffff);
}
