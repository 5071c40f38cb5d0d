// The tree's layers, bottom to top: a file may import its own layer and those
// below it, never one above, and no import cycle may exist (type-only imports
// included). This reads every .ts file's imports (static, dynamic, `export ...
// from`, `import type`, `declare module`, and the `new URL("...",
// import.meta.url)` references of code that is not a test), so it needs no
// kernel and no FFI.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * Bottom to top. A folder's files belong to its layer, "." is the root
 * (mod.ts). replay sits above maps because opening a system creates maps; the
 * recorder, player and verifier themselves import ffi only.
 */
const LAYERS: readonly string[] = [
  "ffi", // the kernel boundary: commands, map types, errno and errors, attrs, memory, backends, Kernel
  "btf", // BTF types, wire format, BTF objects
  "maps", // BpfMap on raw bytes, batches, walks, info, ids
  "object", // BPF ELF objects read into programs, relocations, map specs, BTF.ext: no kernel call
  "programs", // programs in the kernel: load with the verifier's log, test runs, info, ids, pins
  "events", // ring buffers, perf buffers: streams of records the kernel writes into shared memory
  "codec", // codecs, codecs from and to BTF, typed maps, map.typed()
  "replay", // transcripts, recorder, player, verifier; openSystem and its modes
  "testing", // bpfmap/testing: transcriptTests for the users' own tests
  "cli", // the bpfmap command
  ".", // mod.ts: the public API
  "examples",
  "bench",
  "tests",
  "scripts", // npm test's summary, the mutation runner: tools over the whole tree
];

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SKIP = new Set(["node_modules", "fixtures", ".git"]);

function sourceFiles(dir = ""): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    if (SKIP.has(entry.name) || entry.name.startsWith(".")) continue;
    const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

function layerOf(file: string): string {
  const top = file.includes("/") ? file.slice(0, file.indexOf("/")) : ".";
  return top;
}

/** `source` with comments, strings and template text blanked, specifier strings kept. */
function code(source: string): string {
  let out = "";
  let i = 0;
  let lastSignificant = "";
  const regexMayFollow = () => /^$|[(,=:[!&|?{};+\-*%<>~^]$/.test(lastSignificant);
  while (i < source.length) {
    // charAt: "" past the end, which matches nothing below, as undefined did.
    const c = source.charAt(i);
    const next = source.charAt(i + 1);
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? source.length : end + 2;
      out += " ";
    } else if (c === "\"" || c === "'") {
      let j = i + 1;
      while (j < source.length && source[j] !== c && source[j] !== "\n") {
        j += source[j] === "\\"
          ? 2
          : 1;
      }
      out += source.slice(i, j + 1);
      lastSignificant = c;
      i = j + 1;
    } else if (c === "`") {
      // Template text can hold anything; its ${...} code cannot import at top level here.
      let j = i + 1;
      while (j < source.length && source[j] !== "`") j += source[j] === "\\" ? 2 : 1;
      out += "``";
      lastSignificant = "`";
      i = j + 1;
    } else if (c === "/" && regexMayFollow()) {
      let j = i + 1;
      let inClass = false;
      while (j < source.length && source[j] !== "\n") {
        if (source[j] === "\\") j++;
        else if (source[j] === "[") inClass = true;
        else if (source[j] === "]") inClass = false;
        else if (source[j] === "/" && !inClass) break;
        j++;
      }
      out += "/r/";
      lastSignificant = "/";
      i = j + 1;
    } else {
      out += c;
      if (!/\s/.test(c)) lastSignificant = /[\w$]/.test(c) ? "a" : c;
      i++;
    }
  }
  return out;
}

const IMPORTS = [
  /\b(?:import|export)\b[^;"'`]*?\bfrom\s*(["'])([^"'\n]+)\1/g,
  /\bimport\s*(["'])([^"'\n]+)\1/g,
  /\bimport\s*\(\s*(["'])([^"'\n]+)\1/g,
  /\bdeclare\s+module\s*(["'])([^"'\n]+)\1/g,
];
const URL_REFERENCE = /\bnew\s+URL\s*\(\s*(["'])([^"'\n]+)\1\s*,\s*import\.meta\.url/g;

/** The relative specifiers a file's code imports (and, unless it is a test, references by URL). */
function importsOf(source: string, isTest: boolean): string[] {
  const text = code(source);
  const found: string[] = [];
  for (const pattern of isTest ? IMPORTS : [...IMPORTS, URL_REFERENCE]) {
    // Group 2, the specifier, takes part in every match of these patterns.
    for (const match of text.matchAll(pattern)) found.push(match[2]!);
  }
  return found.filter((spec) => spec.startsWith("./") || spec.startsWith("../"));
}

interface Edge {
  from: string;
  to: string;
  spec: string;
}

function edges(files: readonly string[]): Edge[] {
  const all: Edge[] = [];
  for (const from of files) {
    const source = readFileSync(join(ROOT, from), "utf8");
    for (const spec of importsOf(source, layerOf(from) === "tests")) {
      const to = relative(ROOT, normalize(join(ROOT, dirname(from), spec))).replaceAll("\\", "/");
      if (to.endsWith(".ts")) all.push({ from, to, spec });
    }
  }
  return all;
}

/** One cycle, as the files along it back to the first, or undefined. */
function findCycle(files: readonly string[], graph: readonly Edge[]): string[] | undefined {
  const out = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const { from, to } of graph) out.get(from)?.push(to);
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string): string[] | undefined => {
    state.set(file, "open");
    stack.push(file);
    for (const next of out.get(file) ?? []) {
      if (state.get(next) === "open") return [...stack.slice(stack.indexOf(next)), next];
      if (state.get(next) === undefined) {
        const cycle = visit(next);
        if (cycle) return cycle;
      }
    }
    stack.pop();
    state.set(file, "done");
    return undefined;
  };
  for (const file of files) {
    if (state.get(file) === undefined) {
      const cycle = visit(file);
      if (cycle) return cycle;
    }
  }
  return undefined;
}

test("the import scanner finds every kind of import and none in comments or strings", () => {
  const source = [
    `import a from "./a.ts";`,
    `import type { B } from "../b.ts";`,
    `import {\n  c,\n  type C,\n} from "./c.ts";`,
    `export * from "./d.ts";`,
    `export { e } from "./e.ts";`,
    `import "./f.ts";`,
    `const g = await import("./g.ts");`,
    `declare module "./h.ts" {}`,
    `const i = new URL("./i.ts", import.meta.url);`,
    `import process from "node:process";`,
    `// import { x } from "./comment.ts";`,
    `/** @example\n * import { y } from "./jsdoc.ts";\n */`,
    "const s = `import { z } from \"./template.ts\"`;",
    `const r = /from "\\.\\/regex.ts"/;`,
    `const q = 'from "./quoted.ts"';`,
  ].join("\n");
  assert.deepEqual(importsOf(source, false).sort(), [
    "../b.ts",
    "./a.ts",
    "./c.ts",
    "./d.ts",
    "./e.ts",
    "./f.ts",
    "./g.ts",
    "./h.ts",
    "./i.ts",
  ]);
  assert.ok(!importsOf(source, true).includes("./i.ts"), "tests' URL references are free");
});

test("the cycle finder names a cycle's files in order", () => {
  const graph = [
    { from: "a.ts", to: "b.ts", spec: "" },
    { from: "b.ts", to: "c.ts", spec: "" },
    { from: "c.ts", to: "b.ts", spec: "" },
  ];
  assert.deepEqual(findCycle(["a.ts", "b.ts", "c.ts"], graph), ["b.ts", "c.ts", "b.ts"]);
  assert.equal(findCycle(["a.ts", "b.ts"], graph.slice(0, 1)), undefined);
});

test("every source file sits in a layer and imports only its own layer or those below", () => {
  const files = sourceFiles();
  assert.ok(files.includes("maps/bpf_map.ts") && files.includes("mod.ts"), "walked the tree");
  const outside = files.filter((file) => !LAYERS.includes(layerOf(file)));
  assert.deepEqual(outside, [], "files in no layer: add their folder to LAYERS");
  const graph = edges(files);
  assert.ok(graph.length > 100, `found only ${graph.length} imports`);
  const upward = graph
    .filter(({ from, to }) => LAYERS.indexOf(layerOf(to)) > LAYERS.indexOf(layerOf(from)))
    .map(({ from, to, spec }) =>
      `${from} (${layerOf(from)}) imports "${spec}" = ${to} (${layerOf(to)})`
    );
  assert.deepEqual(upward, [], `imports that go up:\n${upward.join("\n")}`);
});

test("no import cycle, type-only imports included", () => {
  const files = sourceFiles();
  const cycle = findCycle(files, edges(files));
  assert.equal(cycle, undefined, `import cycle: ${cycle?.join(" -> ")}`);
});
