/**
 * The closing summary of `npm test`, read from the JUnit reports of its four
 * passes: one line per pass with the cases that passed, failed and were
 * skipped (doc examples counted apart), then the distinct cases, so that no
 * number adds the same case up four times.
 *
 * Usage: `deno run --allow-read scripts/summary.ts NAME=REPORT.xml ...`
 * (in pass order). Exits 1 if a report is missing or any case failed.
 *
 * @module
 */

/** One test case as a JUnit report lists it. */
interface Case {
  /** The test file (Bun) or the name's own path (Deno doc examples); "" when the report does not say. */
  file: string;
  /** The full name, describe blocks joined by " > ". */
  name: string;
  state: "passed" | "failed" | "skipped";
  doc: boolean;
}

const ENTITIES: Record<string, string> = {
  "&lt;": "<",
  "&gt;": ">",
  "&amp;": "&",
  "&apos;": "'",
  "&quot;": "\"",
};

function unescape(text: string): string {
  return text.replace(/&(lt|gt|amp|apos|quot);/g, (entity) => ENTITIES[entity]!);
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return match === null ? undefined : unescape(match[1]!);
}

/**
 * The leaf cases of a report. Deno lists a `describe` block as a case of its
 * own beside its steps (`parent > child`), and Bun nests suites: either way
 * only leaves count.
 */
function parseReport(xml: string): Case[] {
  const cases: Case[] = [];
  const pattern = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const match of xml.matchAll(pattern)) {
    const tag = match[1]!;
    const body = match[3] ?? "";
    const classname = attribute(tag, "classname") ?? "";
    const rawName = attribute(tag, "name") ?? "";
    const doc = /#\d+-\d+\.[a-z]+$/.test(rawName);
    // Bun gives the describe block as classname and the file as an attribute.
    const name = attribute(tag, "file") !== undefined && classname !== ""
      ? `${classname} > ${rawName}`
      : rawName;
    const file = attribute(tag, "file") ?? (doc ? rawName.replace(/^file:\/\/\/?/, "/") : "");
    const state = /<(failure|error)\b/.test(body)
      ? "failed"
      : /<skipped\b/.test(body)
      ? "skipped"
      : "passed";
    cases.push({ file, name, state, doc });
  }
  const parents = new Set<string>();
  for (const c of cases) {
    const parts = c.name.split(" > ");
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join(" > "));
  }
  return cases.filter((c) => !parents.has(c.name));
}

function count(cases: Case[], state: Case["state"]): number {
  return cases.filter((c) => c.state === state).length;
}

const passes: { label: string; cases: Case[] }[] = [];
let broken = false;
for (const arg of Deno.args) {
  const at = arg.indexOf("=");
  const label = arg.slice(0, at);
  const path = arg.slice(at + 1);
  try {
    passes.push({ label, cases: parseReport(Deno.readTextFileSync(path)) });
  } catch (error) {
    console.log(`${label}: no report (${(error as Error).message}): the pass did not finish`);
    broken = true;
  }
}

const width = Math.max(...passes.map((p) => p.label.length));
for (const { label, cases } of passes) {
  const tests = cases.filter((c) => !c.doc);
  const docs = cases.filter((c) => c.doc);
  let line = `${label.padEnd(width)}  ${count(tests, "passed")} passed, ${
    count(tests, "failed")
  } failed, ${count(tests, "skipped")} skipped`;
  if (docs.length > 0) {
    line += `; doc examples: ${count(docs, "passed")} passed, ${count(docs, "failed")} failed`;
  }
  console.log(line);
}

// A case is known by its name (Deno's reports do not say which file a step of
// a node:test describe block came from); the same name in two files counts once.
const byName = new Map<string, Case["state"][]>();
for (const { cases } of passes) {
  for (const c of cases) {
    // A fuzz case names its random seed, which differs between passes.
    const key = c.doc ? c.file : c.name.replace(/ \(seed \d+\)$/, "");
    const states = byName.get(key) ?? [];
    states.push(c.state);
    byName.set(key, states);
  }
}
let passed = 0;
let failed = 0;
let skipped = 0;
for (const states of byName.values()) {
  if (states.includes("failed")) failed++;
  else if (states.includes("passed")) passed++;
  else skipped++;
}
const docCount = new Set(passes.flatMap((p) => p.cases.filter((c) => c.doc).map((c) => c.file)))
  .size;
console.log(
  `distinct cases: ${byName.size} (${byName.size - docCount} tests, ${docCount} doc examples); `
    + "a case passes if it passed in every pass that ran it",
);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (broken || failed > 0) Deno.exit(1);
