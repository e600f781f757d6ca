// Pure parsers of dependency manifests: text in, packages out. A version is reported only when the
// manifest pins exactly one (`==1.2.3`, a lock file's resolved version); a range, a URL or a VCS
// reference is reported with version null (unpinned). TOML goes through smol-toml, YAML through
// yaml; requirements files and PEP 508 strings are small line grammars parsed here.
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import type { DependencyPackage, Ecosystem } from "../contract/dependencies";

export type Found = Omit<DependencyPackage, "manifest">;

/** The manifest kinds the agent reads, by file name. */
export type ManifestKind = "requirements" | "pyproject" | "poetry-lock" | "uv-lock" | "pipfile-lock" | "conda-env" | "package-lock";

/** The kind of manifest at a workspace-relative path (`requirements*.txt`, `requirements/*.txt`, …), or null. */
export function manifestKind(relPath: string): ManifestKind | null {
  const parts = relPath.split("/");
  const fileName = parts[parts.length - 1]!;
  if (/^requirements[\w.-]*\.txt$/i.test(fileName)) return "requirements";
  if (parts[parts.length - 2] === "requirements" && fileName.endsWith(".txt")) return "requirements";
  if (fileName === "pyproject.toml") return "pyproject";
  if (fileName === "poetry.lock") return "poetry-lock";
  if (fileName === "uv.lock") return "uv-lock";
  if (fileName === "Pipfile.lock") return "pipfile-lock";
  if (fileName === "environment.yml" || fileName === "environment.yaml") return "conda-env";
  if (fileName === "package-lock.json") return "package-lock";
  return null;
}

/** PEP 503 normal form: the name PyPI and OSV both key by. */
export function normalizePyPIName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

const PEP508_NAME = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$/;
const EXACT = /^(?:===?)\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)$/;

/**
 * One PEP 508 requirement (`name[extras] (specifiers) ; markers` or `name @ url`): the name and
 * the exact version when the only specifier is `==X` (not a wildcard) or `===X`.
 */
export function parsePep508(text: string): Found | null {
  const noMarker = text.split(";")[0]!.trim();
  const m = PEP508_NAME.exec(noMarker);
  if (!m) return null;
  const name = normalizePyPIName(m[1]!);
  let rest = m[3]!.trim();
  if (rest.startsWith("@")) return { name, version: null, ecosystem: "PyPI" };
  rest = rest.replace(/^\((.*)\)$/, "$1").trim();
  const specs = rest ? rest.split(",").map((s) => s.trim()).filter(Boolean) : [];
  const exact = specs.length === 1 ? EXACT.exec(specs[0]!) : null;
  return { name, version: exact && !exact[1]!.includes("*") ? exact[1]! : null, ecosystem: "PyPI" };
}

export interface RequirementsResult {
  packages: Found[];
  /** Files named by `-r` / `--requirement`, as written (relative to the including file). */
  includes: string[];
}

/** A pip requirements file: comments, continuations, options, hashes and markers are understood. */
export function parseRequirements(text: string): RequirementsResult {
  const packages: Found[] = [];
  const includes: string[] = [];
  const joined = text.replace(/\\\r?\n/g, " ");
  for (const raw of joined.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    const inc = /^(?:-r|--requirement)(?:\s+|=)(\S+)/.exec(line);
    if (inc) {
      includes.push(inc[1]!);
      continue;
    }
    // Other options (-c constraints, -e editables, index URLs, -f links) name no installed version.
    if (line.startsWith("-")) continue;
    // A bare URL or path (a wheel, a VCS checkout) carries no name we can key by.
    if (/^(?:[a-z+]+:\/\/|\.{0,2}\/)/i.test(line)) continue;
    const req = line.replace(/\s--hash[= ]\S+/g, "").trim();
    const found = parsePep508(req);
    if (found) packages.push(found);
  }
  return { packages, includes };
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === "object" && v !== null && !Array.isArray(v);

/** Poetry's version syntax: a bare `1.2.3` or `==1.2.3` is exact; ^, ~, ranges and `*` are not. */
function poetryVersion(spec: unknown): string | null {
  const v = typeof spec === "string" ? spec : isTable(spec) && typeof spec.version === "string" ? spec.version : null;
  if (!v) return null;
  const m = /^(?:==)?\s*([0-9][A-Za-z0-9.+!_-]*)$/.exec(v.trim());
  return m && !m[1]!.includes("*") ? m[1]! : null;
}

/** pyproject.toml: PEP 621 `[project]` dependencies and extras, and Poetry's dependency tables. */
export function parsePyproject(text: string): Found[] {
  const doc = parseToml(text) as Table;
  const out: Found[] = [];
  const project = isTable(doc.project) ? doc.project : {};
  const lists: unknown[] = [project.dependencies];
  if (isTable(project["optional-dependencies"])) lists.push(...Object.values(project["optional-dependencies"]));
  if (isTable(doc["dependency-groups"])) lists.push(...Object.values(doc["dependency-groups"]));
  for (const list of lists) {
    if (!Array.isArray(list)) continue;
    for (const item of list) if (typeof item === "string") {
      const f = parsePep508(item);
      if (f) out.push(f);
    }
  }
  const tool = isTable(doc.tool) ? doc.tool : {};
  const poetry = isTable(tool.poetry) ? tool.poetry : {};
  const tables: unknown[] = [poetry.dependencies, poetry["dev-dependencies"]];
  if (isTable(poetry.group)) for (const g of Object.values(poetry.group)) if (isTable(g)) tables.push(g.dependencies);
  for (const t of tables) {
    if (!isTable(t)) continue;
    for (const [name, spec] of Object.entries(t)) {
      if (name.toLowerCase() === "python") continue;
      out.push({ name: normalizePyPIName(name), version: poetryVersion(spec), ecosystem: "PyPI" });
    }
  }
  return out;
}

/** poetry.lock and uv.lock: `[[package]]` entries with the resolved name and version. */
export function parseTomlLock(text: string): Found[] {
  const doc = parseToml(text) as Table;
  const list = Array.isArray(doc.package) ? doc.package : [];
  const out: Found[] = [];
  for (const p of list) {
    if (!isTable(p) || typeof p.name !== "string") continue;
    // uv lists the project itself (and workspace members) as editable or virtual sources.
    const source = isTable(p.source) ? p.source : {};
    if ("editable" in source || "virtual" in source) continue;
    out.push({ name: normalizePyPIName(p.name), version: typeof p.version === "string" ? p.version : null, ecosystem: "PyPI" });
  }
  return out;
}

/** Pipfile.lock (JSON): `default` and `develop`, each name → `{ version: "==X" }`. */
export function parsePipfileLock(text: string): Found[] {
  const doc = JSON.parse(text) as Table;
  const out: Found[] = [];
  for (const section of ["default", "develop"]) {
    const t = doc[section];
    if (!isTable(t)) continue;
    for (const [name, spec] of Object.entries(t)) {
      const v = isTable(spec) && typeof spec.version === "string" ? EXACT.exec(spec.version.trim())?.[1] ?? null : null;
      out.push({ name: normalizePyPIName(name), version: v, ecosystem: "PyPI" });
    }
  }
  return out;
}

/** A conda match spec: `name==1.2.3`, `name=1.2.3=build` and `name=1.2.3` (three parts) are exact. */
function condaSpec(spec: string): Found | null {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:::)?\s*(.*)$/.exec(spec.trim().replace(/^[\w.-]+::/, ""));
  if (!m) return null;
  const rest = m[2]!.trim();
  let version: string | null = null;
  const eq2 = /^==\s*([0-9][\w.+!-]*)$/.exec(rest);
  const eq1 = /^=\s*([0-9][\w.+!-]*)(=\S+)?$/.exec(rest);
  if (eq2) version = eq2[1]!;
  else if (eq1 && (eq1[2] || eq1[1]!.split(".").length >= 3)) version = eq1[1]!;
  if (version?.includes("*")) version = null;
  return { name: m[1]!.toLowerCase(), version, ecosystem: "conda" };
}

/** environment.yml: conda dependencies, and the `pip:` list as PyPI requirements. */
export function parseCondaEnvironment(text: string): Found[] {
  const doc = parseYaml(text) as unknown;
  const deps = isTable(doc) && Array.isArray(doc.dependencies) ? doc.dependencies : [];
  const out: Found[] = [];
  for (const d of deps) {
    if (typeof d === "string") {
      const f = condaSpec(d);
      // pip and python are the environment itself, not a dependency worth checking.
      if (f && f.name !== "python" && f.name !== "pip") out.push(f);
    } else if (isTable(d) && Array.isArray(d.pip)) {
      out.push(...parseRequirements(d.pip.filter((x): x is string => typeof x === "string").join("\n")).packages);
    }
  }
  return out;
}

/** package-lock.json, lockfile v1 (`dependencies`, nested) and v2/v3 (`packages`, by install path). */
export function parsePackageLock(text: string): Found[] {
  const doc = JSON.parse(text) as Table;
  const out: Found[] = [];
  if (isTable(doc.packages)) {
    for (const [path, p] of Object.entries(doc.packages)) {
      if (!path || !isTable(p) || p.link === true) continue;
      const i = path.lastIndexOf("node_modules/");
      if (i < 0) continue; // a workspace member, not an installed package
      const name = typeof p.name === "string" ? p.name : path.slice(i + "node_modules/".length);
      out.push({ name, version: typeof p.version === "string" ? p.version : null, ecosystem: "npm" });
    }
    return out;
  }
  const walk = (deps: unknown, depth: number) => {
    if (!isTable(deps) || depth > 64) return;
    for (const [name, p] of Object.entries(deps)) {
      if (!isTable(p)) continue;
      const v = typeof p.version === "string" && /^\d/.test(p.version) ? p.version : null;
      out.push({ name, version: v, ecosystem: "npm" });
      walk(p.dependencies, depth + 1);
    }
  };
  walk(doc.dependencies, 0);
  return out;
}

/** Parses one manifest of a known kind (requirements files without following their includes). */
export function parseManifest(kind: ManifestKind, text: string): Found[] {
  switch (kind) {
    case "requirements":
      return parseRequirements(text).packages;
    case "pyproject":
      return parsePyproject(text);
    case "poetry-lock":
    case "uv-lock":
      return parseTomlLock(text);
    case "pipfile-lock":
      return parsePipfileLock(text);
    case "conda-env":
      return parseCondaEnvironment(text);
    case "package-lock":
      return parsePackageLock(text);
  }
}

/** One entry per ecosystem + name + version (the first manifest that named it wins). */
export function dedupePackages<T extends Found>(list: T[]): T[] {
  const seen = new Set<string>();
  return list.filter((p) => {
    const k = `${p.ecosystem}\u0000${p.name}\u0000${p.version ?? ""}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export type { Ecosystem };
