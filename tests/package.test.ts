// bpfmap as a new user gets it: `npm pack`, the tarball installed into a
// fresh project with no network (the package has no dependencies), imported
// by name from Bun and from Deno, and its `bpfmap` bin run with only one of
// the two runtimes on PATH.
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { BpfMap } from "../mod.ts";
import { liveTest } from "./helpers/live.ts";
import { toolTest } from "./helpers/tools.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BUN = join(ROOT, "node_modules", "bun", "bin", "bun.exe");
const DENO = join(ROOT, "node_modules", "deno", "deno");
/** The folders a tarball ships: the library's layers and the testing helper, nothing else. */
const SHIPPED = [
  "ffi",
  "btf",
  "maps",
  "object",
  "programs",
  "events",
  "codec",
  "replay",
  "testing",
  "cli",
];

function run(command: string, args: string[], opts: SpawnSyncOptions = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", ...opts });
  if (result.error) throw result.error;
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

function ok(command: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const result = run(command, args, opts);
  assert.equal(result.status, 0, `${command} ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

function filesUnder(root: string, dir = ""): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
    return entry.isDirectory() ? filesUnder(root, path) : [path];
  });
}

interface Installed {
  tarball: string;
  project: string;
}

let installed: Installed | undefined;

/** The package packed and installed into a fresh project, once per run. */
function install(): Installed {
  if (installed) return installed;
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-package-"));
  const name = ok("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: ROOT }).trim();
  const tarball = join(dir, name);
  const project = join(dir, "project");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "user", type: "module" }));
  // --offline: the install may need nothing from a registry.
  ok("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], { cwd: project });
  installed = { tarball, project };
  return installed;
}

toolTest("the tarball holds the library, README and LICENSE, and installs nothing else", {
  commands: ["npm", "tar"],
}, () => {
  const { tarball, project } = install();
  const listed = ok("tar", ["-tzf", tarball]).trim().split("\n").map((path) =>
    path.replace(/^package\//, "")
  );
  const expected = [
    "LICENSE",
    "README.md",
    "mod.ts",
    "package.json",
    ...SHIPPED.flatMap((dir) => filesUnder(ROOT, dir)),
  ];
  assert.deepEqual(listed.sort(), expected.sort());
  assert.ok(listed.includes("testing/mod.ts") && listed.includes("cli/bpfmap.sh"));
  // No dev tools, no dependencies: node_modules holds bpfmap and its bin only.
  const modules = readdirSync(join(project, "node_modules")).filter((name) =>
    !name.startsWith(".")
  );
  assert.deepEqual(modules, ["bpfmap"]);
  assert.deepEqual(readdirSync(join(project, "node_modules", ".bin")), ["bpfmap"]);
  const bin = statSync(join(project, "node_modules", "bpfmap", "cli", "bpfmap.sh"));
  assert.ok((bin.mode & 0o111) !== 0, "the bin is executable");
});

const SCRIPT = `import { BpfMap } from "bpfmap";
import { main } from "bpfmap/cli";
import { transcriptTests } from "bpfmap/testing";
using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4 });
map.update(new Uint8Array([1, 0, 0, 0]), new Uint8Array([42, 0, 0, 0]));
const value = map.lookup(new Uint8Array([1, 0, 0, 0]));
console.log(JSON.stringify({
  value: value === undefined ? null : Array.from(value),
  entries: [...map.keys()].length,
  cli: typeof main,
  testing: typeof transcriptTests,
}));
`;
const EXPECTED = { value: [42, 0, 0, 0], entries: 1, cli: "function", testing: "function" };

liveTest(
  "an installed bpfmap imports by name from Bun and from Deno, and drives the kernel",
  () => {
    const { project } = install();
    writeFileSync(join(project, "user.ts"), SCRIPT);
    // Bun resolves "bpfmap" through node_modules and package.json's exports.
    assert.deepEqual(JSON.parse(ok(BUN, ["user.ts"], { cwd: project })), EXPECTED);
    // Deno will not strip types under a node_modules it manages: an import map
    // names the package's entries, and nodeModulesDir "none" leaves the folder alone.
    const denoProject = join(project, "deno");
    mkdirSync(denoProject);
    writeFileSync(join(denoProject, "user.ts"), SCRIPT);
    const entries = {
      "bpfmap": "mod.ts",
      "bpfmap/cli": "cli/main.ts",
      "bpfmap/testing": "testing/mod.ts",
    };
    const imports = Object.fromEntries(
      Object.entries(entries).map(([name, path]) => [name, `../node_modules/bpfmap/${path}`]),
    );
    writeFileSync(
      join(denoProject, "deno.json"),
      JSON.stringify({ nodeModulesDir: "none", imports }),
    );
    const out = ok(DENO, ["run", "--allow-ffi", "user.ts"], { cwd: denoProject });
    assert.deepEqual(JSON.parse(out), EXPECTED);
  },
);

liveTest(
  "the installed bin runs with only Deno or only Bun on PATH, and names both when neither is",
  () => {
    const { project } = install();
    using map = BpfMap.create({ type: "lru_hash", keySize: 8, valueSize: 16, maxEntries: 3 });
    const bin = join(project, "node_modules", ".bin", "bpfmap");
    // PATH holds one folder, with one runtime in it: not even readlink.
    const pathWith = (name: string, target: string | undefined) => {
      const dir = mkdtempSync(join(tmpdir(), `bpfmap-path-${name}-`));
      if (target !== undefined) symlinkSync(target, join(dir, name));
      return { ...process.env, PATH: dir };
    };
    for (const [name, target] of [["deno", DENO], ["bun", BUN]] as const) {
      const out = ok(bin, ["map", "show", "id", String(map.id)], {
        cwd: project,
        env: pathWith(name, target),
      });
      assert.match(
        out,
        new RegExp(`^${map.id}: lru_hash  flags 0x0\\n\\tkey 8B  value 16B  max_entries 3 `),
        name,
      );
    }
    const neither = run(bin, ["map", "list"], { cwd: project, env: pathWith("none", undefined) });
    assert.equal(neither.status, 2);
    assert.equal(neither.stdout, "");
    assert.match(neither.stderr, /needs Bun or Deno to run, and found neither on PATH/);
    assert.match(neither.stderr, /https:\/\/bun\.sh/);
    assert.match(neither.stderr, /https:\/\/deno\.com/);
  },
);

toolTest(
  "the installed package type-checks under bun init's tsconfig, with exactOptionalPropertyTypes",
  {
    commands: ["npm", "tar", "node"],
  },
  () => {
    const { project } = install();
    const dir = join(project, "strict");
    mkdirSync(dir, { recursive: true });
    const compilerOptions = {
      // `bun init`'s, plus exactOptionalPropertyTypes; the types from this repository's node_modules.
      lib: ["ESNext"],
      target: "ESNext",
      module: "Preserve",
      moduleDetection: "force",
      moduleResolution: "bundler",
      allowImportingTsExtensions: true,
      verbatimModuleSyntax: true,
      noEmit: true,
      strict: true,
      skipLibCheck: true,
      noFallthroughCasesInSwitch: true,
      noUncheckedIndexedAccess: true,
      noImplicitOverride: true,
      exactOptionalPropertyTypes: true,
      typeRoots: [join(ROOT, "node_modules"), join(ROOT, "node_modules", "@types")],
      types: ["bun-types"],
    };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions }));
    writeFileSync(
      join(dir, "index.ts"),
      `import { BpfMap } from "bpfmap";\nimport { main } from "bpfmap/cli";\n`
        + `import { transcriptTests } from "bpfmap/testing";\n`
        + `export const used = [BpfMap, main, transcriptTests];\n`,
    );
    const tsc = run(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", dir]);
    // Errors inside node_modules/bpfmap are the symptom: there must be none at all.
    assert.equal(tsc.stdout + tsc.stderr, "");
    assert.equal(tsc.status, 0);
  },
);
