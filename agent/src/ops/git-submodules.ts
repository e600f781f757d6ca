// Submodules of an app that asks for them (`gitSubmodules`): one level, each checked before git
// touches it. The list is read as data from the commit itself (`git config --blob`, NUL-separated),
// never from the work tree a container can write, and never through `git submodule`, which would
// follow URLs, nested submodules and configuration on its own. Every URL passes the repository's
// rules (relative ones resolved against the repository URL first) and the host check; each
// submodule gets its own git dir inside the app's (removed with it) and is fetched at depth 1 at
// exactly the commit the superproject records.
import { createHash } from "node:crypto";
import { lstat, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { SUBMODULES_MAX, checkSubmodule, type SubmoduleEntry } from "../contract/git-ref";
import type { Progress } from "../contract/reports";
import type { RepositoryRules } from "../contract/validation";
import { OpsError } from "./errors";
import { ExecError } from "./exec";
import type { LocalGit } from "./git-store";
import { removeGitPointer } from "./workspace";

export interface SubmodulesOptions {
  rules: RepositoryRules;
  local: LocalGit;
  network: (what: "fetch", args: string[], gitDir: string, signal?: AbortSignal) => Promise<string>;
  /** The repository host check (DNS included) the agent applies before any network git. */
  checkHost: (url: string) => Promise<void>;
}

export interface SubmoduleUpdate {
  /** The superproject's URL: relative submodule URLs resolve against it. */
  url: string;
  gitDir: string;
  workTree: string;
  commit: string;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

const SHA = /^[0-9a-f]{40,64}$/;

/** git's own fatal/error lines (not the command line, which names the git dir). */
function gitReason(err: Error): string {
  if (err instanceof OpsError) return err.message;
  const text = err instanceof ExecError ? err.output : err.message;
  const lines = text.split(/[\r\n]+/).map((l) => l.trim()).filter(Boolean);
  return (lines.filter((l) => /^(fatal|error):/i.test(l)).join(" ") || lines.slice(-2).join(" ") || "git failed").slice(0, 500);
}

/** `submodule.<name>.<key>` entries of `git config -z --list` output (`key\nvalue\0`…). */
export function parseGitmodules(listing: string): SubmoduleEntry[] {
  const byName = new Map<string, SubmoduleEntry>();
  for (const record of listing.split("\0")) {
    if (!record) continue;
    const nl = record.indexOf("\n");
    const key = nl === -1 ? record : record.slice(0, nl);
    const value = nl === -1 ? undefined : record.slice(nl + 1);
    if (!key.startsWith("submodule.")) continue;
    const dot = key.lastIndexOf(".");
    if (dot <= "submodule.".length) continue;
    const name = key.slice("submodule.".length, dot);
    const field = key.slice(dot + 1);
    const entry = byName.get(name) ?? { name, path: undefined, url: undefined };
    if (field === "path") entry.path = value;
    if (field === "url") entry.url = value;
    byName.set(name, entry);
  }
  return [...byName.values()];
}

export class Submodules {
  constructor(private readonly o: SubmodulesOptions) {}

  async update(req: SubmoduleUpdate): Promise<void> {
    const { local } = this.o;
    const dirs = { gitDir: req.gitDir };
    const blob = `${req.commit}:.gitmodules`;
    const present = await local(["cat-file", "-e", blob], dirs).then(
      () => true,
      () => false,
    );
    if (!present) return;
    // --blob reads the committed file as data; includes are off for an explicit source.
    const entries = parseGitmodules(await local(["config", "--blob", blob, "--no-includes", "-z", "--list"], dirs));
    if (entries.length > SUBMODULES_MAX) throw new OpsError("INVALID", `${req.url} has ${entries.length} submodules; at most ${SUBMODULES_MAX} are fetched`);
    // Every submodule is checked before any is fetched: a refused one leaves nothing half done.
    const planned: { name: string; url: string; path: string; sha: string }[] = [];
    for (const entry of entries) {
      const checked = checkSubmodule(entry, req.url, this.o.rules);
      if ("problem" in checked) throw new OpsError("INVALID", `refused ${checked.problem}`);
      const tree = await local(["ls-tree", "-z", req.commit, "--", checked.path], dirs);
      const m = /^160000 commit ([0-9a-f]{40,64})\t/.exec(tree);
      if (!m) continue; // listed in .gitmodules but not a submodule in this commit: git skips it too
      await this.checkPath(req.workTree, checked.path, entry.name);
      await this.o.checkHost(checked.url).catch((err: Error) => {
        throw new OpsError("INVALID", `refused submodule ${JSON.stringify(entry.name)}: ${err.message}`);
      });
      planned.push({ name: entry.name, url: checked.url, path: checked.path, sha: m[1]! });
    }
    for (const sub of planned) {
      req.onProgress?.({ step: "checkout", message: `submodule ${sub.path} at ${sub.sha.slice(0, 12)}` });
      const subGitDir = join(req.gitDir, "dcc-modules", `${createHash("sha256").update(sub.path).digest("hex").slice(0, 16)}.git`);
      const subDirs = { gitDir: subGitDir };
      const have = await local(["cat-file", "-e", `${sub.sha}^{commit}`], subDirs).then(
        () => true,
        () => false,
      );
      if (!have) {
        await mkdir(join(req.gitDir, "dcc-modules"), { recursive: true, mode: 0o700 });
        await local(["init", "-q", "--bare", "--", subGitDir], {});
        await this.o
          .network("fetch", ["fetch", "--depth", "1", "--no-tags", "--no-recurse-submodules", "--", sub.url, sub.sha], subGitDir, req.signal)
          .catch((err: Error) => {
            throw new OpsError("FAILED", `git could not fetch submodule ${JSON.stringify(sub.name)} from ${sub.url}: ${gitReason(err)}`, { cause: err });
          });
      }
      const tree = join(req.workTree, sub.path);
      await mkdir(tree, { recursive: true });
      await removeGitPointer(tree);
      await local(["reset", "-q", "--hard", "--no-recurse-submodules", sub.sha, "--"], { gitDir: subGitDir, workTree: tree }, req.signal);
      const at = (await local(["rev-parse", "--verify", "HEAD^{commit}"], { gitDir: subGitDir })).trim();
      if (!SHA.test(at) || at !== sub.sha) throw new OpsError("FAILED", `submodule ${JSON.stringify(sub.name)} is at ${at}, not ${sub.sha}`);
    }
  }

  /** No segment of the submodule's path may be a symbolic link (the repository's own could point out of the work tree). */
  private async checkPath(workTree: string, path: string, name: string): Promise<void> {
    let at = workTree;
    for (const seg of path.split("/")) {
      at = join(at, seg);
      const st = await lstat(at).catch(() => null);
      if (!st) return;
      if (st.isSymbolicLink() || !st.isDirectory()) throw new OpsError("INVALID", `refused submodule ${JSON.stringify(name)}: its path ${path} is not a plain folder in the work tree`);
    }
  }
}
