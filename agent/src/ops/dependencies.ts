// Lists the dependency manifests in an app's workspace and parses them (./manifests.ts). The
// workspace is container-writable, so nothing here follows a symbolic link: the walk only descends
// real directories, files are opened with O_NOFOLLOW and must be regular and small, and a `-r`
// include must resolve inside the workspace. Installed trees (node_modules, venvs, site-packages)
// are skipped: they are what the manifests produce, not what the repository asks for.
import { constants } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { dirname, join, normalize, relative, sep } from "node:path";
import { DependencyPackageSchema, MAX_PACKAGES, type DependencyPackage } from "../contract/dependencies";
import { dedupePackages, manifestKind, parseManifest, parseRequirements, type ManifestKind } from "./manifests";

export interface DependencyInventory {
  packages: DependencyPackage[];
  manifests: string[];
  truncated: boolean;
  /** Manifests that could not be read or parsed, with why (logged by the caller). */
  problems: { manifest: string; error: string }[];
}

const SKIP_DIRS = new Set(["node_modules", "site-packages", "dist-packages", "__pycache__", "venv", ".venv", "env", ".git", ".cache", ".models", "models", "outputs"]);
const MAX_DEPTH = 4;
const MAX_MANIFESTS = 500;
const MAX_FILE_BYTES = 8 * 1024 * 1024;
const MAX_INCLUDE_DEPTH = 8;
/** What one `dependencies` message may carry, well under the channel's 1 MiB frame. */
const MAX_MESSAGE_CHARS = 900 * 1024;

async function readSmallFile(path: string): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error("not a regular file");
    if (st.size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    return await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
}

/** Workspace-relative paths of manifests, breadth first, hidden and installed trees skipped. */
async function findManifests(root: string): Promise<{ path: string; kind: ManifestKind }[]> {
  const found: { path: string; kind: ManifestKind }[] = [];
  let level = [""];
  for (let depth = 0; depth <= MAX_DEPTH && level.length && found.length < MAX_MANIFESTS; depth++) {
    const next: string[] = [];
    for (const rel of level) {
      const entries = await readdir(join(root, rel), { withFileTypes: true }).catch(() => []);
      entries.sort((a, b) => a.name.localeCompare(b.name));
      for (const e of entries) {
        const path = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (!e.name.startsWith(".") && !SKIP_DIRS.has(e.name)) next.push(path);
        } else if (e.isFile()) {
          const kind = manifestKind(path);
          if (kind && found.length < MAX_MANIFESTS) found.push({ path, kind });
        }
      }
    }
    level = next;
  }
  return found;
}

/** Reads every manifest under `workspace` into one de-duplicated inventory. */
export async function scanWorkspace(workspace: string): Promise<DependencyInventory> {
  const root = normalize(workspace);
  const problems: DependencyInventory["problems"] = [];
  const all: DependencyPackage[] = [];
  const manifests = await findManifests(root);
  const read = new Set<string>();

  const readRequirements = async (rel: string, depth: number): Promise<void> => {
    if (read.has(rel) || depth > MAX_INCLUDE_DEPTH) return;
    read.add(rel);
    const r = parseRequirements(await readSmallFile(join(root, rel)));
    all.push(...r.packages.map((p) => ({ ...p, manifest: rel })));
    for (const inc of r.includes) {
      const target = normalize(join(dirname(join(root, rel)), inc));
      const incRel = relative(root, target);
      // An include must stay inside the workspace: `-r /etc/passwd` or `../../x` is not read.
      if (!incRel || incRel.startsWith(`..${sep}`) || incRel === ".." || incRel.startsWith(sep)) {
        problems.push({ manifest: rel, error: `include ${inc} is outside the workspace` });
        continue;
      }
      try {
        await readRequirements(incRel.split(sep).join("/"), depth + 1);
      } catch (e) {
        problems.push({ manifest: incRel, error: (e as Error).message.slice(0, 200) });
      }
    }
  };

  for (const m of manifests) {
    try {
      if (m.kind === "requirements") await readRequirements(m.path, 0);
      else all.push(...parseManifest(m.kind, await readSmallFile(join(root, m.path))).map((p) => ({ ...p, manifest: m.path })));
    } catch (e) {
      problems.push({ manifest: m.path, error: (e as Error).message.slice(0, 200) });
    }
  }
  // A name the contract would refuse must not cost the whole message (the console drops malformed frames).
  let packages = dedupePackages(all).filter((p) => DependencyPackageSchema.safeParse(p).success);
  let truncated = false;
  if (packages.length > MAX_PACKAGES) {
    packages = packages.slice(0, MAX_PACKAGES);
    truncated = true;
  }
  while (packages.length && JSON.stringify(packages).length > MAX_MESSAGE_CHARS) {
    packages = packages.slice(0, Math.floor(packages.length * 0.9));
    truncated = true;
  }
  const names = [...new Set([...manifests.map((m) => m.path), ...read])].filter((n) => n.length <= 512).slice(0, 1000);
  return { packages, manifests: names, truncated, problems };
}
