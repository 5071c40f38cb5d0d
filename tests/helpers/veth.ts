/**
 * A veth pair for the attach tests: `bpfmt0` here, with a fixed ifindex (so
 * that every run attaches to the same number), and `bpfmt1` in a network
 * namespace of its own, so that datagrams between 10.242.0.1 and 10.242.0.2
 * really cross the pair instead of loopback. Static neighbours: no ARP
 * round trip on the way. Made in `before()` under a machine-wide lock (the
 * names and index are the machine's), removed in `after()`; a replay run
 * makes nothing.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { after, before } from "node:test";
import { type Exchange, thisNetns } from "./datagrams.ts";
import { replayRun } from "./live.ts";
import { lockMachine } from "./machine_lock.ts";

/** This side's device. */
export const VETH = "bpfmt0";
/** Its ifindex, asked for at creation: the same on every run. */
export const VETH_IFINDEX = 4242;
/** The peer's network namespace. */
export const PEER_NETNS = "bpfmap-peer";
/** This side's address, and the peer's. */
export const HERE = "10.242.0.1";
export const PEER = "10.242.0.2";

/** Datagrams from the peer's namespace to this side: they enter `bpfmt0` (ingress). */
export const FROM_PEER: Exchange = { to: HERE, sender: ["ip", "netns", "exec", PEER_NETNS] };
/** Datagrams from this side to the peer: they leave through `bpfmt0` (egress). */
export const TO_PEER = (): Exchange => ({
  to: PEER,
  receiver: ["ip", "netns", "exec", PEER_NETNS],
  sender: thisNetns(),
});

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: "inherit" });

/** Registers the pair's setup and teardown with the test file's `before` and `after`. */
export function vethForTests(): void {
  if (replayRun) return;
  let unlock: (() => void) | undefined;
  before(() => {
    unlock = lockMachine("veth-bpfmt");
    // A run that died half-way left its pair behind: start clean.
    removePair();
    ip("netns", "add", PEER_NETNS);
    ip(
      "link",
      "add",
      VETH,
      "index",
      String(VETH_IFINDEX),
      "type",
      "veth",
      "peer",
      "name",
      "bpfmt1",
      "netns",
      PEER_NETNS,
    );
    ip("addr", "add", `${HERE}/24`, "dev", VETH);
    ip("link", "set", VETH, "up");
    const peer = ["-n", PEER_NETNS];
    ip(...peer, "addr", "add", `${PEER}/24`, "dev", "bpfmt1");
    ip(...peer, "link", "set", "bpfmt1", "up");
    ip(...peer, "link", "set", "lo", "up");
    const mac = (args: string[]) =>
      /link\/ether ([0-9a-f:]+)/.exec(execFileSync("ip", args, { encoding: "utf8" }))![1]!;
    const hereMac = mac(["link", "show", VETH]);
    const peerMac = mac([...peer, "link", "show", "bpfmt1"]);
    ip("neigh", "replace", PEER, "lladdr", peerMac, "dev", VETH, "nud", "permanent");
    ip(...peer, "neigh", "replace", HERE, "lladdr", hereMac, "dev", "bpfmt1", "nud", "permanent");
  });
  after(() => {
    removePair();
    unlock?.();
  });
}

/**
 * Deletes the pair (both ends at once, before this returns: a namespace's own
 * devices go later, in the kernel's cleanup work) and the namespace.
 */
function removePair(): void {
  execFileSync("sh", [
    "-c",
    `ip link del ${VETH} 2>/dev/null; ip netns del ${PEER_NETNS} 2>/dev/null; true`,
  ]);
}
