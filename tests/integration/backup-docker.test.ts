// Backup and restore end to end on real Docker: the console with its local agent deploys an app
// from a git repository served over smart HTTP; a backup is taken while it runs; the branch moves
// on; containers, database and workspaces are wiped; restore.mjs puts the files back, the console
// and its agent start again with their restored identities, and `restore.mjs --start-apps` brings
// the app back at its recorded commit, answering on its port.
import type { AppDto as AppItem } from "../../app/services/apps.server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT, startConsole, type RunningConsole } from "../support/console";
import { TEST_IMAGE, docker, dockerAvailable, listByLabel, removeByLabel, waitFor } from "../support/docker";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";

const execFileAsync = promisify(execFile);
const ADMIN = "backup-docker-admin-token-0123456789";
const auth = { authorization: `Bearer ${ADMIN}` };
const APP = "restore-web";

async function script(name: string, args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  try {
    const r = await execFileAsync(process.execPath, [join(ROOT, "scripts", name), ...args], {
      cwd: ROOT,
      env: { NODE_ENV: "production", PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}


let base: string;
let dataDir: string;
let root: string;
let gitServer: GitServer;
let c: RunningConsole;
let port: number;
let env: Record<string, string>;
const consoleEnv = () => ({ DCC_ADMIN_TOKEN: ADMIN, DCC_LOCAL_AGENT: "1", DCC_ALLOW_INSECURE_GIT: "1", DCC_WORKSPACE_ROOT: root, DCC_BASE_IMAGE: TEST_IMAGE });

async function app(): Promise<AppItem | undefined> {
  return (await c.query<AppItem>("apps.get", { name: APP }, auth)).body.result?.data;
}
async function page(): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/index.html`);
  return r.ok ? r.text() : "";
}

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  base = await mkdtemp(join(tmpdir(), "dcc-restore-"));
  dataDir = join(base, "data");
  root = join(base, "dockerstore");
  env = { DCC_DATA_DIR: dataDir, DCC_WORKSPACE_ROOT: root, DATABASE_URL: `file:${join(dataDir, "dcc.db")}` };
  gitServer = await startGitServer();
  port = await freePort();
  c = await startConsole({ dataDir, env: consoleEnv() });
}, 180_000);

afterAll(async () => {
  await c?.stop();
  await removeByLabel(`dcc.app=${APP}`).catch(() => {});
  await gitServer?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

describe("backup and restore on Docker", () => {
  it("brings a running app back at its recorded commit after a wipe", async () => {
    const repo = await gitServer.createRepo(APP, { "index.html": "restored v1\n" });
    await waitFor(async () => (await c.query<{ items: { online: boolean }[] }>("hosts.list", undefined, auth)).body.result?.data.items.some((h) => h.online), {
      timeoutMs: 30_000,
      message: "local agent online",
    });
    const created = await c.mutate("apps.create", { name: APP, repository: repo.url, startCommand: `httpd -f -p ${port} -h /app`, port, image: TEST_IMAGE }, auth);
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const running = await waitFor(
      async () => {
        const a = await app();
        // A failed deploy is a failure of this test, with the agent's reason (not a skip).
        if (a?.lastError) throw new Error(`deploy failed: ${a.lastError}`);
        return a?.status === "RUNNING" && (await page()) === "restored v1\n" ? a : null;
      },
      { timeoutMs: 90_000, intervalMs: 250, message: "app RUNNING and serving v1" },
    );
    expect(running.commitSha).toBe(repo.sha);
    const [before] = await listByLabel(`dcc.app=${APP}`);

    // Online backup while the app runs; then the branch moves on.
    const b = await script("backup.mjs", ["--out", join(base, "backups")], env);
    expect(b.code, b.out).toBe(0);
    const [name] = await readdir(join(base, "backups"));
    const backup = join(base, "backups", name);
    const v2 = await gitServer.commit(APP, { "index.html": "newer v2\n" });
    expect(v2).not.toBe(repo.sha);

    // The machine is lost: console and agent stopped, containers, database and workspaces gone.
    await c.stop();
    await removeByLabel(`dcc.app=${APP}`);
    expect(await listByLabel(`dcc.app=${APP}`)).toEqual([]);
    await rm(dataDir, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });

    const r = await script("restore.mjs", [backup], env);
    expect(r.code, r.out).toBe(0);
    expect(await readFile(join(root, APP, "index.html"), "utf8")).toBe("restored v1\n");
    c = await startConsole({ dataDir, env: consoleEnv() });
    // The local agent comes back with its restored identity (no new enrolment) and reconciles on
    // hello: the database still says RUNNING, but the container is gone, so the app is STOPPED.
    await waitFor(async () => (await app())?.status === "STOPPED", { timeoutMs: 60_000, intervalMs: 250, message: "the restored app reconciled to STOPPED" });
    const hosts = (await c.query<{ items: { id: string }[] }>("hosts.list", undefined, auth)).body.result!.data.items;
    expect(hosts).toHaveLength(1);
    const s = await script("restore.mjs", [backup, "--start-apps", "--console", c.url, "--token", ADMIN], env);
    expect(s.code, s.out).toBe(0);

    await waitFor(async () => (await page()) === "restored v1\n", { timeoutMs: 90_000, intervalMs: 250, message: "the app answers on its port with v1 again" });
    const back = await waitFor(async () => {
      const a = await app();
      return a?.status === "RUNNING" ? a : null;
    }, { timeoutMs: 30_000, message: "app RUNNING" });
    expect(back.commitSha).toBe(repo.sha);
    const [id] = await listByLabel(`dcc.app=${APP}`);
    expect(id).not.toBe(before);
    expect(JSON.parse(await docker(["inspect", "--format", "{{json .Config.Labels}}", id]))).toMatchObject({ "dcc.app": APP });
  });
});
