/**
 * Command-line words as bpftool reads them: keywords may be abbreviated to
 * any prefix (`map dum`, `pin` for `pinned`), a MAP is `id N`, `pinned PATH`
 * or `name NAME`, and BYTES are `0x01 2 010` (C's strtoul, base 0) or, after
 * `hex`, bare hex pairs.
 *
 * @module
 */

import { BpfError } from "../ffi/errors.ts";

/**
 * Bad usage: exit code 2, and the message on stderr (`{"error":...}` with `-j`).
 *
 * The CLI's errors are told apart by class, never by message: `UsageError`
 * (2), `CommandError` (1, in words a person can act on, the kernel's
 * `BpfError` as its `cause` where there is one), `AnsweredFailure` (1, already
 * printed), and the library's `BpfError` (1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AnsweredFailure, CommandError, UsageError } from "./args.ts";
 *
 * assert.ok(new AnsweredFailure("key not found") instanceof CommandError); // exit code 1
 * assert.ok(!(new UsageError("expected 'key'") instanceof CommandError)); // exit code 2
 * ```
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** An operation that failed: exit code 1. */
export class CommandError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CommandError";
  }
}

/**
 * A failure the command has answered in its output already, as bpftool
 * answers a lookup of a missing key with `Not found` (`null` with `-j`):
 * exit code 1 and nothing more printed. The message is for callers of
 * `main()` in code.
 */
export class AnsweredFailure extends CommandError {
  constructor(message: string) {
    super(message);
    this.name = "AnsweredFailure";
  }
}

/** Whether `token` is a non-empty prefix of `word`, as bpftool's `is_prefix`. */
export function isPrefix(token: string | undefined, word: string): boolean {
  return token !== undefined && token.length > 0 && word.startsWith(token);
}

/** A cursor over the words of a command line. */
export class Args {
  readonly #words: string[];
  #next = 0;

  constructor(words: string[]) {
    this.#words = words;
  }

  /** The next word, not taken. */
  peek(): string | undefined {
    return this.#words[this.#next];
  }

  /** Takes the next word; `what` names it in the error when there is none. */
  take(what: string): string {
    const word = this.#words[this.#next];
    if (word === undefined) throw new UsageError(`expected ${what}`);
    this.#next++;
    return word;
  }

  /** How many words are left. */
  get left(): number {
    return this.#words.length - this.#next;
  }

  /** Fails if words are left over. */
  end(): void {
    if (this.left > 0) throw new UsageError(`unexpected argument: ${this.peek()}`);
  }
}

/** Which map a command line names. */
export type MapRef =
  | { kind: "id"; id: number }
  | { kind: "pinned"; path: string }
  | { kind: "name"; name: string };

/** Takes `id N`, `pinned PATH` or `name NAME`. */
export function takeMapRef(args: Args): MapRef {
  const word = args.take("MAP (id N, pinned PATH or name NAME)");
  const found = takeIdOrPinned(args, word, "map");
  if (found !== undefined) return found;
  if (isPrefix(word, "name")) return { kind: "name", name: args.take("a map name after 'name'") };
  throw new UsageError(`expected 'id', 'pinned' or 'name', got: '${word}'`);
}

/** What `id N` or `pinned PATH` names, after `word`; `undefined` if `word` is neither. */
function takeIdOrPinned(
  args: Args,
  word: string,
  what: "map" | "program" | "link",
): LinkRef | undefined {
  if (isPrefix(word, "id")) {
    const text = args.take(`a ${what} id after 'id'`);
    const id = parseUnsigned(text, `${what} id`);
    if (id === 0) throw new UsageError(`invalid ${what} id: ${text}`);
    return { kind: "id", id };
  }
  if (isPrefix(word, "pinned")) return { kind: "pinned", path: args.take("a path after 'pinned'") };
  return undefined;
}

/** Which link a command line names (bpftool's `LINK`). */
export type LinkRef = { kind: "id"; id: number } | { kind: "pinned"; path: string };

/**
 * Takes a LINK: `id N` or `pinned PATH`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Args, takeLinkRef } from "./args.ts";
 * assert.deepEqual(takeLinkRef(new Args(["id", "7"])), { kind: "id", id: 7 });
 * assert.throws(() => takeLinkRef(new Args(["tag", "x"])), { name: "UsageError" });
 * ```
 */
export function takeLinkRef(args: Args): LinkRef {
  const word = args.take("LINK (id N or pinned PATH)");
  const found = takeIdOrPinned(args, word, "link");
  if (found !== undefined) return found;
  throw new UsageError(`expected 'id' or 'pinned', got: '${word}'`);
}

/** Which program a command line names. */
export type ProgRef =
  | { kind: "id"; id: number }
  | { kind: "pinned"; path: string }
  | { kind: "tag"; tag: string }
  | { kind: "name"; name: string };

/** bpftool's `MAX_PROG_FULL_NAME`, with its NUL: a longer name can match nothing. */
const MAX_PROG_FULL_NAME = 128;

/**
 * Takes `id N`, `pinned PATH`, `tag TAG` (16 hex digits, as `prog show`
 * prints it) or `name NAME` (the full name `prog show` prints).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Args, takeProgRef } from "./args.ts";
 *
 * assert.deepEqual(takeProgRef(new Args(["i", "0x10"])), { kind: "id", id: 16 });
 * assert.deepEqual(takeProgRef(new Args(["tag", "614B434CD8324ECC"])), {
 *   kind: "tag",
 *   tag: "614b434cd8324ecc",
 * });
 * assert.throws(() => takeProgRef(new Args(["tag", "614b"])), {
 *   name: "UsageError",
 *   message: "can't parse tag '614b': expected 16 hex digits, as prog show prints it",
 * });
 * ```
 */
export function takeProgRef(args: Args): ProgRef {
  const word = args.take("PROG (id N, pinned PATH, tag TAG or name NAME)");
  const found = takeIdOrPinned(args, word, "program");
  if (found !== undefined) return found;
  if (isPrefix(word, "tag")) {
    const tag = args.take("a tag after 'tag'");
    if (!/^[0-9a-f]{16}$/i.test(tag)) {
      throw new UsageError(
        `can't parse tag '${tag}': expected 16 hex digits, as prog show prints it`,
      );
    }
    return { kind: "tag", tag: tag.toLowerCase() };
  }
  if (isPrefix(word, "name")) {
    const name = args.take("a program name after 'name'");
    if (name.length > MAX_PROG_FULL_NAME - 1) {
      throw new UsageError(`can't parse name: longer than ${MAX_PROG_FULL_NAME - 1} characters`);
    }
    return { kind: "name", name };
  }
  throw new UsageError(`expected 'id', 'pinned', 'tag' or 'name', got: '${word}'`);
}

/** Parses an unsigned 32-bit integer in C's notation (`12`, `0x1f`, `017`). */
export function parseUnsigned(text: string, what: string): number {
  const value = parseCNumber(text, 0);
  if (value === undefined || value > 0xffff_ffff) {
    throw new UsageError(`can't parse ${what}: ${JSON.stringify(text)}`);
  }
  return value;
}

/**
 * Takes `size` bytes for `what` (`key`, `value`): decimal, `0x` hex or `0`
 * octal tokens, or bare hex pairs after `hex`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Args, takeBytes } from "./args.ts";
 *
 * assert.deepEqual(takeBytes(new Args(["0x01", "2", "010", "255"]), 4, "key"), new Uint8Array([1, 2, 8, 255]));
 * assert.deepEqual(takeBytes(new Args(["hex", "0a", "ff"]), 2, "value"), new Uint8Array([10, 255]));
 * ```
 */
export function takeBytes(args: Args, size: number, what: string): Uint8Array {
  let base: 0 | 16 = 0;
  if (isPrefix(args.peek(), "hex")) {
    args.take("hex");
    base = 16;
  }
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const token = args.peek();
    if (token === undefined || (base === 0 && /^[a-z]/i.test(token) && !/^0x/i.test(token))) {
      throw new UsageError(
        `${what}: expected ${size} byte${size === 1 ? "" : "s"}, got ${i}`
          + (token === undefined ? "" : ` (before '${token}')`),
      );
    }
    const value = parseCNumber(token, base);
    if (value === undefined || value > 0xff) {
      throw new UsageError(
        `${what}: can't parse byte ${i + 1} of ${size}: '${token}' `
          + `(bytes are 0-255: decimal, 0x hex, 0 octal, or pairs of hex digits after 'hex')`,
      );
    }
    args.take("byte");
    bytes[i] = value;
  }
  return bytes;
}

/** C's strtoul on a whole token: base 0 (0x hex, 0 octal, decimal) or 16. */
function parseCNumber(text: string, base: 0 | 16): number | undefined {
  if (base === 16) {
    return /^(0x)?[0-9a-f]+$/i.test(text)
      ? parseInt(text.replace(/^0x/i, ""), 16)
      : undefined;
  }
  if (/^0x[0-9a-f]+$/i.test(text)) return parseInt(text.slice(2), 16);
  if (/^0[0-7]*$/.test(text)) return parseInt(text, 8);
  if (/^[1-9][0-9]*$/.test(text)) return Number(text);
  return undefined;
}

/** What {@linkcode runSubcommand} needs of a command's context: where help goes. */
export interface HelpTarget {
  out: { write(text: string): void };
  json?: { raw(value: string): void } | undefined;
}

/**
 * Runs the subcommand `args` names (by prefix, as bpftool: `sh` is `show`),
 * or `help` (`null` in JSON, as bpftool); anything else is a UsageError
 * with `usage`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Args, runSubcommand } from "./args.ts";
 * const seen: string[] = [];
 * const ctx = { out: { write: (text: string) => seen.push(text) } };
 * const commands = { show: (_: typeof ctx, args: Args) => seen.push(args.take("x")) };
 * runSubcommand(ctx, new Args(["sh", "7"]), "thing", "Usage: ...\n", commands);
 * runSubcommand(ctx, new Args(["help"]), "thing", "Usage: ...\n", commands);
 * assert.deepEqual(seen, ["7", "Usage: ...\n"]);
 * assert.throws(() => runSubcommand(ctx, new Args(["frob"]), "thing", "Usage: ...\n", commands), {
 *   message: "unknown thing command 'frob'\n\nUsage: ...\n",
 * });
 * ```
 */
export function runSubcommand<C extends HelpTarget>(
  ctx: C,
  args: Args,
  object: string,
  usage: string,
  commands: Record<string, (ctx: C, args: Args) => void>,
): void {
  const names = Object.keys(commands);
  const command = args.take(`a ${object} command (${[...names, "help"].join(", ")})`);
  const run = names.find((name) => isPrefix(command, name));
  if (run !== undefined) return commands[run]!(ctx, args);
  if (!isPrefix(command, "help")) {
    throw new UsageError(`unknown ${object} command '${command}'\n\n${usage}`);
  }
  args.end();
  if (ctx.json) ctx.json.raw("null");
  else ctx.out.write(usage);
}

/**
 * What `open` returns, or `undefined` when the kernel answers ENOENT: an
 * object listed a moment ago and gone since, or an id no object has.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfError } from "../ffi/errors.ts";
 * import { unlessGone } from "./args.ts";
 * assert.equal(unlessGone(() => 7), 7);
 * assert.equal(unlessGone(() => { throw new BpfError("BPF_PROG_GET_FD_BY_ID", 2); }), undefined);
 * ```
 */
export function unlessGone<T>(open: () => T): T | undefined {
  try {
    return open();
  } catch (error) {
    if (error instanceof BpfError && error.code === "ENOENT") return undefined;
    throw error;
  }
}

/** What `open` opens at a pinned `path`; no such pin is a CommandError that says so. */
export function openPinnedAt<T>(path: string, open: (path: string) => T): T {
  const found = unlessGone(() => open(path));
  if (found === undefined) throw new CommandError(`pinned ${path}: no such pinned object`);
  return found;
}
