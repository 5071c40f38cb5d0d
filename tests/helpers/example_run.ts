/**
 * Running the examples (`examples/*.ts`) as their users run them: built from
 * `examples/bpf/*.bpf.c` with the clang line their headers give, and started
 * as `deno run` or `bun` children with the permissions their headers give.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { TRANSCRIPT_ENV } from "../../mod.ts";
import { FIXTURE_LOG_ENV } from "../../replay/system.ts";
import { liveTest, liveUnavailable, replayRun } from "./live.ts";
import { buildObject, CLANG_NEEDS } from "./object_build.ts";
import { toolTest } from "./tools.ts";

/** The repository's root folder. */
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The runtimes an example runs in: each test runs both. */
export const RUNTIMES = ["deno", "bun"] as const;
export type Runtime = (typeof RUNTIMES)[number];

/**
 * Compiles `examples/bpf/<name>.bpf.c` into `<folder>/<name>.bpf.o` and
 * returns its path. The line info names the source as `examples/bpf/...`
 * from any checkout, so that the object is the same everywhere.
 */
export function buildExample(name: string, folder: string): string {
  return buildObject(join(ROOT, "examples", "bpf", `${name}.bpf.c`), folder);
}

/** How an example reaches BPF: live (FFI), or not at all (a replay on a machine without BPF). */
export interface ExampleOptions {
  /** `false`: Deno without FFI (`--deny-ffi`: a child gets its parent's permissions otherwise), Bun with the live backend forbidden. */
  ffi?: boolean;
  /** Deno's `--allow-write` (a transcript to record). */
  write?: boolean;
  /** Keep this run's `BPFMAP_TRANSCRIPT` (the example's transcript follows the suite's mode; Deno's `--allow-env`). */
  transcriptMode?: boolean;
}

/** The command line and environment that run `examples/<script> ARGS` in `runtime`. */
function exampleCommand(
  runtime: Runtime,
  script: string,
  args: readonly string[],
  opts: ExampleOptions,
): { command: string; argv: string[]; env: Record<string, string | undefined> } {
  const ffi = opts.ffi ?? true;
  const path = join(ROOT, "examples", script);
  const env: Record<string, string | undefined> = { ...process.env };
  if (!opts.transcriptMode) delete env[TRANSCRIPT_ENV];
  if (!ffi) env.BPFMAP_FORBID_LIVE = "1";
  const command = join(ROOT, "node_modules", ".bin", runtime);
  if (runtime === "bun") return { command, argv: [path, ...args], env };
  // An example that reads the suite's mode also notes its transcript in the suite's fixture log
  // (openSystem does): that file alone is writable where nothing else is.
  const log = opts.transcriptMode ? env[FIXTURE_LOG_ENV] : undefined;
  const permissions = [
    ffi ? "--allow-ffi" : "--deny-ffi",
    "--allow-read",
    ...(opts.write ? ["--allow-write"] : log ? [`--allow-write=${log}`] : []),
    ...(opts.transcriptMode ? ["--allow-env"] : []),
  ];
  return { command, argv: ["run", ...permissions, path, ...args], env };
}

/** How an example ended. */
export interface ExampleResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** An example running in a child process. */
export class ExampleRun {
  stdout = "";
  stderr = "";
  readonly #child: ChildProcess;
  readonly #ended: Promise<ExampleResult>;

  constructor(runtime: Runtime, script: string, args: readonly string[], opts: ExampleOptions) {
    const { command, argv, env } = exampleCommand(runtime, script, args, opts);
    this.#child = spawn(command, argv, { env, stdio: ["ignore", "pipe", "pipe"] });
    this.#child.stdout!.on("data", (chunk) => (this.stdout += String(chunk)));
    this.#child.stderr!.on("data", (chunk) => (this.stderr += String(chunk)));
    this.#ended = new Promise((resolve, reject) => {
      this.#child.on("error", reject);
      this.#child.on("close", (status) => {
        resolve({ status, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  /** Resolves once stdout holds `text`; rejects if the example ends first. */
  async waitFor(text: string): Promise<void> {
    while (!this.stdout.includes(text)) {
      const ended = await Promise.race([
        this.#ended,
        new Promise<undefined>((resolve) =>
          this.#child.stdout!.once("data", () => resolve(undefined))
        ),
      ]);
      if (ended !== undefined && !this.stdout.includes(text)) {
        throw new Error(
          `the example ended (${ended.status}) before printing '${text}':\n${ended.stdout}${ended.stderr}`,
        );
      }
    }
  }

  /** Ctrl-C. */
  interrupt(): void {
    // Not child.kill(): after it, Deno 2.9's node:child_process reports the child as killed by
    // that signal, whatever its real end (an exit with 0 after handling it, here).
    process.kill(this.#child.pid!, "SIGINT");
  }

  /** Resolves when the example has ended. */
  ended(): Promise<ExampleResult> {
    return this.#ended;
  }
}

/** Runs `examples/<script> ARGS` to its end in `runtime`. */
export function runExample(
  runtime: Runtime,
  script: string,
  args: readonly string[],
  opts: ExampleOptions = {},
): Promise<ExampleResult> {
  return new ExampleRun(runtime, script, args, opts).ended();
}

/**
 * A test that runs an example on the kernel with an object clang builds:
 * skipped in replay runs and where BPF or clang is missing, but failed in CI
 * (see `liveTest` and `toolTest`).
 */
export function exampleTest(name: string, fn: () => Promise<void>): void {
  if (replayRun || liveUnavailable !== undefined) liveTest(name, fn);
  else toolTest(name, CLANG_NEEDS, fn);
}
