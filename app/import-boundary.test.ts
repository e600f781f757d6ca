// The console shares one module with the agent: the wire contract (agent/src/contract/). This
// check fails when a console file (app/**, db/**) imports anything else from agent/src, so the
// agent's internals (ops, config, state) can change without breaking the console.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(__dirname, "..");
const AGENT_SRC = join(ROOT, "agent/src");
const CONTRACT = join(AGENT_SRC, "contract");

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "node_modules" && e.name !== "migrations") yield* sources(p);
    } else if (/\.(ts|tsx|mts|js|mjs)$/.test(e.name)) yield p;
  }
}

/** Every module specifier in a file: static imports, re-exports, import() and require(). */
export function specifiers(text: string): string[] {
  const out: string[] = [];
  const re = /\b(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\sfrom\s+)?["']([^"']+)["']|\b(?:import|require)\s*\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of text.matchAll(re)) out.push(m[1] ?? m[2]!);
  return out;
}

export function crossesBoundary(file: string, spec: string): boolean {
  if (spec === "@dcc/agent" || spec.startsWith("@dcc/agent/")) return !spec.startsWith("@dcc/agent/src/contract/") && spec !== "@dcc/agent/src/contract";
  if (!spec.startsWith(".")) return false;
  const target = resolve(dirname(file), spec);
  const inAgent = target === AGENT_SRC || target.startsWith(AGENT_SRC + "/");
  return inAgent && !(target === CONTRACT || target.startsWith(CONTRACT + "/"));
}

describe("console ↔ agent boundary", () => {
  it("finds imports the way the check reads them", () => {
    const text = `import { a } from "../../agent/src/ops/compose";\nimport type { B } from '../agent/src/contract/spec';\nexport * from "../agent/src/state";\nconst m = await import("../agent/src/config");`;
    expect(specifiers(text)).toEqual(["../../agent/src/ops/compose", "../agent/src/contract/spec", "../agent/src/state", "../agent/src/config"]);
    const file = join(ROOT, "app/services/x.server.ts");
    expect(crossesBoundary(file, "../../agent/src/ops/compose")).toBe(true);
    expect(crossesBoundary(file, "../../agent/src/contract/compose")).toBe(false);
    expect(crossesBoundary(file, "./apps.server")).toBe(false);
  });

  it("console files import from agent/src only through agent/src/contract", () => {
    const offenders: string[] = [];
    for (const dir of ["app", "db"]) {
      for (const file of sources(join(ROOT, dir))) {
        if (file === __filename) continue;
        for (const spec of specifiers(readFileSync(file, "utf8"))) {
          if (crossesBoundary(file, spec)) offenders.push(`${relative(ROOT, file)} imports ${spec}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});

/** The console file a relative specifier names, or null (a package, or not a source file). */
function resolveSource(file: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  const base = resolve(dirname(file), spec);
  for (const c of [base, `${base}.ts`, `${base}.tsx`, join(base, "index.ts")]) if (existsSync(c) && statSync(c).isFile()) return c;
  return null;
}

describe("console import graph", () => {
  it("has no cycles (type-only imports included)", () => {
    const graph = new Map<string, string[]>();
    for (const dir of ["app", "db"]) {
      for (const file of sources(join(ROOT, dir))) {
        if (/\.test\.tsx?$/.test(file)) continue;
        graph.set(file, specifiers(readFileSync(file, "utf8")).flatMap((s) => resolveSource(file, s) ?? []));
      }
    }
    const cycles: string[] = [];
    const done = new Set<string>();
    const path: string[] = [];
    const visit = (f: string) => {
      if (done.has(f)) return;
      const at = path.indexOf(f);
      if (at >= 0) {
        cycles.push([...path.slice(at), f].map((x) => relative(ROOT, x)).join(" → "));
        return;
      }
      path.push(f);
      for (const d of graph.get(f) ?? []) visit(d);
      path.pop();
      done.add(f);
    };
    for (const f of graph.keys()) visit(f);
    expect(cycles).toEqual([]);
  });
});
