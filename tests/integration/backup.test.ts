// scripts/backup.mjs and scripts/restore.mjs on a real console process, real libSQL files and real
// git over smart HTTP: an online backup while the console takes writes, retention, what large
// files were left out, then a wipe and a restore on which the console starts again with its apps,
// keys and workspaces back at their recorded commits.
//
// The workspace and the agent's git dir are laid out the way the agent's ops layer lays them out
// (`<root>/<name>` work tree, `<state>/git/<name>.git` outside it); the app's commit and status
// are recorded in the database (and its provision command finished) as the hub records an agent's
// report.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@libsql/client";
import { ROOT, startConsole, type RunningConsole } from "../support/console";
import { startGitServer, type GitServer } from "../support/git-server";

const execFileAsync = promisify(execFile);
const ADMIN = "backup-test-admin-token-0123456789";
const auth = { authorization: `Bearer ${ADMIN}` };

interface ScriptRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function script(name: "backup.mjs" | "restore.mjs", args: string[], env: Record<string, string> = {}): Promise<ScriptRun> {
  try {
    const r = await execFileAsync(process.execPath, [join(ROOT, "scripts", name), ...args], {
      cwd: ROOT,
      env: { NODE_ENV: "production", PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as Error & { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? err.message };
  }
}

const gitEnv: NodeJS.ProcessEnv = { NODE_ENV: "test", PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0" };
async function git(args: string[]): Promise<string> {
  return (await execFileAsync("git", args, { env: gitEnv })).stdout.trim();
}

/** Relative path → SHA-256 of every file under `dir` (symbolic links as their target text). */
async function treeHashes(dir: string, skip: (rel: string) => boolean = () => false): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const visit = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const abs = join(d, e.name);
      const rel = relative(dir, abs);
      if (skip(rel)) continue;
      if (e.isDirectory()) await visit(abs);
      else if (e.isFile()) out[rel] = createHash("sha256").update(await readFile(abs)).digest("hex");
    }
  };
  await visit(dir);
  return out;
}

let base: string;
let dataDir: string;
let root: string;
let out: string;
let gitServer: GitServer;
let c: RunningConsole;
let v1: string;
let v2: string;
let env: Record<string, string>;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "dcc-backup-"));
  dataDir = join(base, "data");
  root = join(base, "dockerstore");
  out = join(base, "backups");
  env = { DCC_DATA_DIR: dataDir, DCC_WORKSPACE_ROOT: root, DATABASE_URL: `file:${join(dataDir, "dcc.db")}` };
  gitServer = await startGitServer();
  const repo = await gitServer.createRepo("webui", { "index.html": "<h1>v1</h1>\n", "app.py": "print('v1')\n" });
  v1 = repo.sha;
  c = await startConsole({ dataDir, env: { DCC_ADMIN_TOKEN: ADMIN, DCC_WORKSPACE_ROOT: root, DCC_ALLOW_INSECURE_GIT: "1" } });

  // A host and an app on it, provisioned at v1 as the agent does it: work tree under the root,
  // git dir in the agent's state, untracked outputs and a model file beside the code.
  await c.db().execute("INSERT INTO hosts (id, name, online, facts) VALUES ('host-b1', 'gpu-b1', 0, '{}')");
  const created = await c.mutate("apps.create", { name: "webui", repository: repo.url, startCommand: "python app.py", port: 7860, hostId: "host-b1" }, auth);
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  const gitDir = join(dataDir, "agent", "git", "webui.git");
  await mkdir(join(dataDir, "agent", "git"), { recursive: true });
  await git(["clone", "-q", `--separate-git-dir=${gitDir}`, repo.url, join(root, "webui")]);
  await rm(join(root, "webui", ".git"));
  await mkdir(join(root, "webui", "outputs"));
  await writeFile(join(root, "webui", "outputs", "result.txt"), "generated\n");
  await mkdir(join(root, "webui", "models"));
  await writeFile(join(root, "webui", "models", "sd.safetensors"), Buffer.alloc(300_000, 7));
  await writeFile(join(root, "webui", "cache.bin"), Buffer.alloc(2_000_000, 1));
  await c.db().execute({ sql: "UPDATE apps SET commit_sha = ?, status = 'RUNNING', health = 'reachable', phase = NULL WHERE name = 'webui'", args: [v1] });
  await c.db().execute("UPDATE commands SET state = 'done', finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE app_name = 'webui'");
  // The branch moves on after the deploy: the restore must bring back v1, not the newest commit.
  v2 = await gitServer.commit("webui", { "index.html": "<h1>v2</h1>\n" });
  // An orphan folder that is not an app name is reported, not saved.
  await mkdir(join(root, "Not An App"));
}, 120_000);

afterAll(async () => {
  await c?.stop();
  await gitServer?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

describe("backup and restore", () => {
  let backupDir: string;
  let dataBefore: Record<string, string>;
  let appsAtBackup: number;

  it("writes an online backup while the console takes writes, and keeps the N newest", async () => {
    // Writes keep coming through the API during the backup.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        const r = await c.mutate("apps.create", { name: `load-${written}`, repository: "https://github.com/example/x.git", startCommand: "run", port: 20000 + written }, auth);
        expect(r.status).toBe(200);
        written++;
      }
    })();
    const args = ["--out", out, "--exclude-large", "1M", "--exclude-paths", "models/**", "--keep", "2"];
    const runs: ScriptRun[] = [];
    for (let i = 0; i < 3; i++) runs.push(await script("backup.mjs", args, env));
    writing = false;
    await writer;
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(written).toBeGreaterThan(0);

    // Retention: three runs, --keep 2.
    const kept = (await readdir(out)).filter((n) => n.startsWith("dcc-")).sort();
    expect(kept).toHaveLength(2);
    backupDir = join(out, kept[1]);
    expect(runs[2].stdout).toContain(kept[1]);
    expect((await stat(backupDir)).mode & 0o077).toBe(0); // holds private keys

    const m = JSON.parse(await readFile(join(backupDir, "manifest.json"), "utf8"));
    expect(m).toMatchObject({ format: "dcc-backup/1", database: { integrity: "ok", file: "database/dcc.db" }, versions: { console: expect.any(String), node: process.version } });
    expect(m.database.migrations.applied).toBeGreaterThanOrEqual(1);
    expect(m.apps.find((a: { name: string }) => a.name === "webui")).toMatchObject({ repository: expect.stringContaining("/webui.git"), commitSha: v1, hostId: "host-b1", status: "RUNNING" });
    const ws = m.workspaces.find((w: { name: string }) => w.name === "webui");
    expect(ws).toMatchObject({ app: true, commitSha: v1, file: "workspaces/webui.tar" });
    expect(ws.excluded).toEqual(
      expect.arrayContaining([
        { path: "models/", bytes: 300_000, files: 1, reason: "matches models/**" },
        { path: "cache.bin", bytes: 2_000_000, reason: "larger than 1M" },
      ]),
    );
    expect(m.warnings.join("\n")).toContain("Not An App");
    // Every file is listed with its checksum.
    for (const f of m.files) {
      const sum = createHash("sha256").update(await readFile(join(backupDir, f.path))).digest("hex");
      expect(sum, f.path).toBe(f.sha256);
    }
    expect(m.files.map((f: { path: string }) => f.path).sort()).toEqual(["data/console-data.tar", "database/dcc.db", "workspaces/webui.tar"]);

    // The snapshot is one consistent point: the copy's app rows match its own recorded count.
    appsAtBackup = m.database.tables.apps;
    expect(appsAtBackup).toBeGreaterThanOrEqual(1);
    const copy = createClient({ url: `file:${join(backupDir, "database", "dcc.db")}` });
    try {
      expect(Number((await copy.execute("SELECT count(*) AS n FROM apps")).rows[0].n)).toBe(appsAtBackup);
      expect(String((await copy.execute("PRAGMA integrity_check")).rows[0][0])).toBe("ok");
    } finally {
      copy.close();
    }
  });

  it("refuses a remote database and points to Turso's own tooling", async () => {
    const r = await script("backup.mjs", ["--out", join(base, "remote"), "--database-url", "libsql://example.turso.io"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Turso/);
    expect(existsSync(join(base, "remote")) ? await readdir(join(base, "remote")) : []).toEqual([]);
  });

  it("will not restore over a database a running console holds", async () => {
    const r = await script("restore.mjs", [backupDir, "--force", "--only", "database"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/in use/);
  });

  it("restores on a wiped machine: database, keys and workspaces at the recorded commit", async () => {
    await c.stop();
    const keyFiles = (rel: string) => rel === "dcc.db" || rel.startsWith("dcc.db-") || rel.startsWith("agent");
    dataBefore = await treeHashes(dataDir, keyFiles);
    expect(Object.keys(dataBefore).length).toBeGreaterThan(0); // the console's generated keys
    // The secret key is kept apart from backups (they hold secrets only sealed with it).
    const secretKeyFile = join(dataDir, "secret.key");
    const keptKey = existsSync(secretKeyFile) ? await readFile(secretKeyFile) : null;
    await rm(dataDir, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });

    // A damaged backup is refused before anything is written.
    const damaged = join(base, "damaged");
    await execFileAsync("cp", ["-a", backupDir, damaged]);
    const tar = join(damaged, "workspaces", "webui.tar");
    const bytes = await readFile(tar);
    bytes[bytes.length - 2000] ^= 0xff;
    await writeFile(tar, bytes);
    const bad = await script("restore.mjs", [damaged], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/checksum mismatch/);
    expect(existsSync(dataDir)).toBe(false);

    const r = await script("restore.mjs", [backupDir], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/models\/ .*matches models\/\*\*/);
    expect(r.stdout).toMatch(/cache\.bin .*larger than 1M/);
    expect(r.stdout).toContain(`webui: ${`${gitServer.url}/webui.git`} @ ${v1}`);

    // Keys and secrets are back as they were, once the operator puts the kept secret key back.
    if (keptKey) {
      expect(existsSync(secretKeyFile)).toBe(false);
      expect(r.stdout + r.stderr).toMatch(/holds no secret key/);
      await writeFile(secretKeyFile, keptKey, { mode: 0o600 });
    }
    expect(await treeHashes(dataDir, keyFiles)).toEqual(dataBefore);
    // The work tree is exactly v1 (not the branch's newer v2), with its untracked outputs, and
    // without what was left out.
    const gitDir = join(dataDir, "agent", "git", "webui.git");
    const ws = join(root, "webui");
    expect(await git([`--git-dir=${gitDir}`, "rev-parse", "HEAD"])).toBe(v1);
    expect(await git([`--git-dir=${gitDir}`, `--work-tree=${ws}`, "status", "--porcelain", "--untracked-files=no"])).toBe("");
    expect(await readFile(join(ws, "index.html"), "utf8")).toBe("<h1>v1</h1>\n");
    expect(v2).not.toBe(v1);
    expect(await readFile(join(ws, "outputs", "result.txt"), "utf8")).toBe("generated\n");
    expect(existsSync(join(ws, "models"))).toBe(false);
    expect(existsSync(join(ws, "cache.bin"))).toBe(false);

    // A second restore does not overwrite what is there without --force.
    const again = await script("restore.mjs", [backupDir], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists; pass --force/);

    // The console starts on the restored database with its apps and their commits.
    c = await startConsole({ dataDir, env: { DCC_ADMIN_TOKEN: ADMIN, DCC_WORKSPACE_ROOT: root, DCC_ALLOW_INSECURE_GIT: "1" } });
    const app = await c.query<{ name: string; commitSha: string; hostId: string; status: string }>("apps.get", { name: "webui" }, auth);
    expect(app.body.result?.data).toMatchObject({ name: "webui", commitSha: v1, hostId: "host-b1" });
    const list = await c.query<{ items: unknown[] }>("apps.list", undefined, auth);
    expect(list.body.result!.data.items).toHaveLength(appsAtBackup);

    // Second step: the apps that ran are asked to start again (the agent's `start` runs compose
    // up on the restored compose file and work tree: the container comes back at v1).
    const started = await script("restore.mjs", [backupDir, "--start-apps", "--console", c.url, "--token", ADMIN, "--wait", "30"], env);
    expect(started.code, started.stderr + started.stdout).toBe(0);
    expect(started.stdout).toMatch(/webui: start queued until its host connects \(recorded commit [0-9a-f]{40}\)/);
    const cmds = await c.db().execute("SELECT app_name, action, state FROM commands WHERE action = 'start'");
    expect(cmds.rows.map((r) => [r.app_name, r.state])).toEqual([["webui", "pending"]]);
  });
});
