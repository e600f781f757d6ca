// Where an app lives on disk. The workspace `<root>/<name>` is the only container-writable place;
// everything the agent reads back (git directory, compose file, app state) sits under the agent's
// own state directory, which no container mounts.
import { lstat, lchown, mkdir, readdir, realpath, rm } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { AppNameSchema } from "../contract/validation";
import { OpsError } from "./errors";

export interface AppPaths {
  name: string;
  /** `<root>/<name>`, the real path, bind-mounted at /app. */
  workspace: string;
  /** The repository's git directory, outside the workspace. */
  gitDir: string;
  /** Project directory handed to compose: holds only our docker-compose.yml. */
  composeDir: string;
  composeFile: string;
  /** `<stateDir>/apps/<name>.json`: the app's last applied spec. */
  stateFile: string;
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

export class Layout {
  readonly workspaceRoot: string;
  readonly stateDir: string;
  private rootReal: string | undefined;

  constructor(workspaceRoot: string, stateDir: string) {
    this.workspaceRoot = resolve(workspaceRoot);
    this.stateDir = resolve(stateDir);
  }

  /** HOME for git and compose runs: empty, agent-owned, so no user config is read. */
  get homeDir(): string {
    return join(this.stateDir, "home");
  }

  /** The host's git object stores (./git-store.ts), one per repository URL. */
  get storesDir(): string {
    return join(this.stateDir, "stores");
  }

  /** The apps' git dirs, which borrow their objects from the stores. */
  get gitDirs(): string {
    return join(this.stateDir, "git");
  }

  /** Creates the root and the state folders; refuses a state dir a container could reach. */
  async init(): Promise<void> {
    await mkdir(this.workspaceRoot, { recursive: true, mode: 0o755 });
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const rootReal = await realpath(this.workspaceRoot);
    const stateReal = await realpath(this.stateDir);
    // A state dir under the workspace root could be mounted into a container as some app's /app.
    if (isInside(rootReal, stateReal) || isInside(stateReal, rootReal)) {
      throw new OpsError("INVALID", `state directory ${stateReal} and workspace root ${rootReal} must not contain one another`);
    }
    for (const sub of ["git", "stores", "compose", "apps", "home"]) {
      await mkdir(join(this.stateDir, sub), { recursive: true, mode: 0o700 });
    }
    this.rootReal = rootReal;
  }

  /** Paths of app `name`. Refuses a name that is not a DNS label and a workspace that escapes the root. */
  async paths(name: string): Promise<AppPaths> {
    if (!AppNameSchema.safeParse(name).success) throw new OpsError("INVALID", `app name ${JSON.stringify(name)} is not a DNS label`);
    this.rootReal ??= await realpath(this.workspaceRoot);
    const workspace = join(this.rootReal, name);
    await assertWorkspaceInside(this.rootReal, workspace);
    const composeDir = join(this.stateDir, "compose", name);
    return {
      name,
      workspace,
      gitDir: join(this.stateDir, "git", `${name}.git`),
      composeDir,
      composeFile: join(composeDir, "docker-compose.yml"),
      stateFile: join(this.stateDir, "apps", `${name}.json`),
    };
  }
}

/** The workspace may be missing; if present it must be a real directory whose real path is `<root>/<name>`. */
export async function assertWorkspaceInside(rootReal: string, workspace: string): Promise<void> {
  if (!isInside(rootReal, workspace) || workspace === rootReal) {
    throw new OpsError("INVALID", `workspace ${workspace} is outside the workspace root ${rootReal}`);
  }
  let stat;
  try {
    stat = await lstat(workspace);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  // A symlinked workspace would bind-mount (and let us clean up) whatever it points at.
  if (stat.isSymbolicLink()) throw new OpsError("INVALID", `workspace ${workspace} is a symbolic link; refusing to use it`);
  if (!stat.isDirectory()) throw new OpsError("INVALID", `workspace ${workspace} exists and is not a directory`);
  const real = await realpath(workspace);
  if (real !== workspace || !isInside(rootReal, real)) {
    throw new OpsError("INVALID", `workspace ${workspace} resolves to ${real}, outside the workspace root`);
  }
}

/** Removes a tree without following symlinks (fs.rm unlinks links, never their targets). */
export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 2 });
}

/** Removes `<workspace>/.git` (file, dir or link) so nothing can mistake a container-written pointer for ours. */
export async function removeGitPointer(workspace: string): Promise<void> {
  await rm(join(workspace, ".git"), { recursive: true, force: true });
}

/**
 * Whether files the container uses must be handed to its user: it is a user other than the agent
 * (1000 when the agent is root, or DCC_APP_UID, which install-agent.sh gives a user of its own and
 * the agent the capabilities to chown and clean up for).
 */
export function containerUserIsOther(uid: number): boolean {
  const own = process.getuid?.();
  return own !== undefined && uid !== 0 && uid !== own;
}

/**
 * Hands a tree to the container user (when it is not the agent). lchown never follows a
 * symlink, so a link in the repository (say to /etc/shadow) keeps its target's owner.
 */
export async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  const stat = await lstat(path);
  if (stat.uid !== uid || stat.gid !== gid) await lchown(path, uid, gid);
  if (!stat.isDirectory()) return;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    await chownTree(join(path, entry.name), uid, gid);
  }
}
