/**
 * Starting a helper script in a child process of the same runtime.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { detectRuntime } from "../../ffi/live.ts";

/** The command line that runs `script` with the current runtime and FFI allowed. */
export function runtimeCommand(script: string, args: string[]): [string, string[]] {
  if (detectRuntime() === "deno") {
    return [process.execPath, [
      "run",
      "--allow-ffi",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      script,
      ...args,
    ]];
  }
  return [process.execPath, [script, ...args]];
}

/** Spawns `script` and resolves once it prints `ready` on stdout. */
export function spawnReady(script: string, args: string[]): Promise<ChildProcess> {
  const [command, argv] = runtimeCommand(script, args);
  const child = spawn(command, argv, { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout!.on("data", (chunk) => {
      output += String(chunk);
      if (output.includes("ready")) resolve(child);
    });
    child.on("exit", (code) => reject(new Error(`${script} exited with ${code} before ready`)));
    child.on("error", reject);
  });
}

/** Waits for a child to exit and returns its exit code. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}
