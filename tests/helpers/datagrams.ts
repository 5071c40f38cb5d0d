/**
 * Datagrams carrying the tests' cookie, from a sender to a receiver that
 * may sit in other network namespaces or a cgroup: a node child does the
 * exchange (so Deno needs no --allow-net) and returns once the receiver got
 * every datagram, so that each has passed every hook on its way.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import process from "node:process";
import { PAYLOAD } from "./counting.ts";
import { replayRun } from "./live.ts";

/** Where the exchange happens. */
export interface Exchange {
  /** The receiver's IPv4 address (default 127.0.0.1, with the sender in the same process). */
  to?: string;
  /** A command prefix the receiver runs under (`["ip", "netns", "exec", "peer"]`). */
  receiver?: string[];
  /** A command prefix the sender runs under; the sender then is a process of its own. */
  sender?: string[];
  /** A cgroup v2 directory the whole exchange runs in (its processes join it first). */
  cgroup?: string;
}

/** Sends `count` datagrams to `to` (argv: address, port, count, payload). */
const SENDER = `
  const dgram = require("node:dgram");
  const [to, port, count, payload] = process.argv.slice(1);
  const tx = dgram.createSocket("udp4");
  let sent = 0;
  const next = () => sent++ < Number(count) ? tx.send(payload, Number(port), to, next) : tx.close();
  next();`;

/** Receives `count` datagrams on `to`, from a sender in-process or run under a prefix. */
const RECEIVER = `
  const dgram = require("node:dgram");
  const { spawn } = require("node:child_process");
  const [to, count, payload, sender, script] = process.argv.slice(1);
  const rx = dgram.createSocket("udp4");
  let got = 0;
  rx.on("message", () => { if (++got === Number(count)) rx.close(); });
  rx.bind(0, to, () => {
    const args = [to, String(rx.address().port), count, payload];
    const prefix = JSON.parse(sender);
    if (prefix === null) {
      const tx = dgram.createSocket("udp4");
      for (let i = 0; i < Number(count); i++) tx.send(payload, rx.address().port, to);
      tx.unref();
      return;
    }
    const child = spawn(prefix[0], [...prefix.slice(1), process.execPath, "-e", script, ...args], {
      stdio: "inherit",
    });
    child.on("exit", (code) => { if (code !== 0) { console.error("sender failed", code); process.exit(1); } });
  });`;

/** A command prefix that runs in this process's network namespace (from inside another one). */
export const thisNetns = (): string[] => ["nsenter", `--net=/proc/${process.pid}/ns/net`];

/**
 * Sends `count` datagrams carrying the cookie as `exchange` says, and returns once the receiver
 * got them all. A replay run sends nothing: it has no veth or cgroup, and the counts the test
 * reads come from the transcript.
 */
export function exchangeDatagrams(count: number, exchange: Exchange = {}): void {
  if (replayRun) return;
  const to = exchange.to ?? "127.0.0.1";
  const sender = JSON.stringify(exchange.sender ?? null);
  let command = [...(exchange.receiver ?? []), "node", "-e", RECEIVER];
  command.push(to, String(count), PAYLOAD, sender, SENDER);
  if (exchange.cgroup !== undefined) {
    // The shell joins the cgroup, then becomes the receiver: its children are born in it.
    const join = `echo $$ > '${exchange.cgroup}/cgroup.procs' && exec "$@"`;
    command = ["sh", "-c", join, "sh", ...command];
  }
  execFileSync(command[0]!, command.slice(1), { stdio: "inherit", timeout: 60_000 });
}
