// Cleanup of orphans end to end: the built console, the built agent on the real Docker engine and
// a loopback git server. Beside one real managed app (deployed through the API) the test leaves an
// orphan workspace, a stale git dir and compose dir in the agent's state dir, a link under the
// root, and a stale labelled stack (container + network with our labels for this host, made with
// the docker CLI) — and next to them an UNLABELLED container, a container labelled for ANOTHER
// host, and an orphan workspace that the unlabelled container bind-mounts. The scan lists exactly
// the orphans with size and age; a dry run removes nothing; a forged item list cannot widen the
// removal; the cleanup removes the orphans, and the unlabelled container, the other host's
// container, the mounted folder and the managed app survive (still running and serving). Last,
// the scheduled cleanup removes an old orphan on its own.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostOrphans } from "../../app/services/cleanup.server";
import { startConsole, type RunningConsole } from "../support/console";
import { TEST_IMAGE, docker, dockerAvailable, inspect, listByLabel, removeByLabel } from "../support/docker";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";
import { startAgent, waitFor, type RunningAgent } from "./agents";
import { exists } from "../support/fs";

const tag = randomBytes(3).toString("hex");
const APP = "kept-web";
const STALE = `old-stack-${tag}`;
const OTHER_HOST = `other-host-${tag}`;
const BYSTANDER = `dcc-bystander-${tag}`;
const THEIRS = `dcc-other-host-${tag}`;

let c: RunningConsole;
let git: GitServer;
let agent: RunningAgent;
let hostId: string;
let root: string;
let ops: string;
let port: number;
let outside: string;
const created: string[] = [];

type AppItem = { name: string; status: string; health: string; lastError: string | null; commitSha: string | null };
const app = async () => (await c.query<AppItem>("apps.get", { name: APP })).body.result?.data;
const orphans = async () => (await c.query<HostOrphans>("hosts.orphans", { id: hostId })).body.result!.data;
const du = (p: string) => Number(execFileSync("du", ["-sb", p], { encoding: "utf8" }).split("\t")[0]);
const running = async (name: string) => (await inspect(name)).State.Running;
const page = async () => {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/index.html`);
    return r.ok ? r.text() : "";
  } catch {
    return "";
  }
};
const labels = (host: string, appName: string) => ["dcc.managed=true", `dcc.host=${host}`, `dcc.app=${appName}`, "dcc.app-id=gone"].flatMap((l) => ["--label", l]);

/** Requests through the API and waits for the agent's answer; returns the command's finished state as hosts.orphans shows it. */
async function run(path: "hosts.scanOrphans" | "hosts.cleanup", input: Record<string, unknown>): Promise<HostOrphans> {
  const r = await c.mutate<{ commandId: string; queued: boolean }>(path, { id: hostId, ...input });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  const { commandId } = r.body.result!.data;
  return waitFor(`cleanup command ${commandId} finished`, async () => {
    const o = await orphans();
    return o.last?.commandId === commandId && !o.pending && o;
  }, 60_000, 200);
}

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  git = await startGitServer();
  // Scheduled cleanups every 0.002 h (7.2 s), checked every 1.8 s: the last test turns it on for the host.
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: TEST_IMAGE, DCC_AUTO_CLEANUP_HOURS: "0.002" } });
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  agent = await startAgent({ consoleUrl: e.consoleUrl, token: e.token, args: ["--allow-insecure-git"] });
  hostId = String((await agent.waitForLog("enrolled")).hostId);
  await agent.waitForLog("connected");
  root = join(agent.stateDir, "..", "workspaces");
  ops = join(agent.stateDir, "ops");
  outside = await mkdtemp(join(tmpdir(), "dcc-outside-"));

  // The one real app, deployed through the API.
  const repo = await git.createRepo(APP, { "index.html": "still here\n" });
  port = await freePort();
  const made = await c.mutate("apps.create", { name: APP, repository: repo.url, startCommand: "httpd -f -p $PORT -h /app", port, hostId });
  expect(made.status, JSON.stringify(made.body)).toBe(200);
  await waitFor("the managed app RUNNING and serving", async () => {
    const a = await app();
    if (a?.lastError) throw new Error(a.lastError);
    return a?.status === "RUNNING" && (await page()) === "still here\n";
  }, 90_000, 200);
}, 180_000);

afterAll(async () => {
  for (const name of created) await docker(["rm", "-f", "-v", name]).catch(() => {});
  await docker(["network", "rm", `${STALE}_default`]).catch(() => {});
  await agent?.stop(true);
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await c?.dispose();
  await git?.close();
  if (outside) await rm(outside, { recursive: true, force: true });
});

describe("cleanup of orphans on a real host", () => {
  const old = new Date(Date.now() - 2 * 86_400_000);
  let appContainer: string;
  let wsBytes: number;

  it("scans: lists exactly the orphans, with size and age, and nothing else", async () => {
    // (a) an orphan workspace, last written two days ago
    const ws = join(root, "old-ui");
    await mkdir(join(ws, "outputs"), { recursive: true });
    await writeFile(join(ws, "model.safetensors"), randomBytes(40_000));
    await writeFile(join(ws, "outputs", "img.png"), randomBytes(3_000));
    for (const p of [join(ws, "outputs", "img.png"), join(ws, "model.safetensors"), join(ws, "outputs"), ws]) await utimes(p, old, old);
    wsBytes = du(ws);
    // an orphan workspace an unlabelled container uses: found, but never pulled from under it
    await mkdir(join(root, "shared-data"));
    await writeFile(join(root, "shared-data", "db.sqlite"), "theirs");
    // a link under the root pointing outside it: removed as a link, its target untouched
    await writeFile(join(outside, "precious.txt"), "do not touch");
    await symlink(outside, join(root, "escape"));
    // (c) leftovers in the agent's state dir
    await mkdir(join(ops, "git", "old-ui.git", "objects"), { recursive: true });
    await writeFile(join(ops, "git", "old-ui.git", "HEAD"), "ref: refs/heads/main\n");
    await mkdir(join(ops, "compose", STALE), { recursive: true });
    await writeFile(join(ops, "compose", STALE, "docker-compose.yml"), "services: {}\n");
    // (b) a stale labelled stack for this host, made by hand with the same labels
    await docker(["network", "create", ...labels(hostId, STALE), `${STALE}_default`]);
    created.push(`${STALE}-app-1`, BYSTANDER, THEIRS);
    await docker(["run", "-d", "--name", `${STALE}-app-1`, ...labels(hostId, STALE), "--network", `${STALE}_default`, TEST_IMAGE, "sleep", "3600"]);
    // beside it: a container without our labels (using an orphan-looking folder), and one labelled for another host
    await docker(["run", "-d", "--name", BYSTANDER, "--label", "com.example.owner=someone-else", "-v", `${join(root, "shared-data")}:/data`, TEST_IMAGE, "sleep", "3600"]);
    await docker(["run", "-d", "--name", THEIRS, ...labels(OTHER_HOST, STALE), TEST_IMAGE, "sleep", "3600"]);
    appContainer = (await listByLabel(`dcc.app=${APP}`))[0];

    const o = await run("hosts.scanOrphans", {});
    expect(o.last).toMatchObject({ dryRun: true, ok: true, removed: [] });
    const stale = await inspect(`${STALE}-app-1`);
    const network = await docker(["network", "inspect", "--format", "{{.Id}}", `${STALE}_default`]);
    const items = o.scan!.items;
    expect(items.map((i) => `${i.kind}:${i.kind === "container" || i.kind === "network" ? i.name : i.id}`).sort()).toEqual(
      [
        `container:${STALE}-app-1`,
        `network:${STALE}_default`,
        `compose:${STALE}`,
        "git:old-ui",
        "workspace:old-ui",
        "workspace:shared-data",
        "workspace:escape",
      ].sort(),
    );
    expect(o.scan!.foundTotal).toBe(7);
    const byKey = Object.fromEntries(items.map((i) => [`${i.kind}:${i.id}`, i]));
    expect(byKey["workspace:old-ui"]).toMatchObject({ name: join(root, "old-ui"), app: "old-ui", sizeBytes: wsBytes, sizeComplete: true });
    expect(wsBytes).toBeGreaterThan(43_000);
    expect(byKey["workspace:old-ui"].ageSeconds).toBeGreaterThanOrEqual(2 * 86_400 - 60);
    expect(Math.abs(Date.parse(byKey["workspace:old-ui"].at!) - old.getTime())).toBeLessThan(1000);
    expect(byKey["workspace:escape"].reason).toMatch(/not a folder/);
    expect(byKey["workspace:escape"].sizeBytes).toBeLessThan(4096);
    expect(byKey[`container:${stale.Id}`]).toMatchObject({ app: STALE, state: "running" });
    expect(byKey[`container:${stale.Id}`].ageSeconds).toBeLessThan(600);
    expect(Math.abs(Date.parse(byKey[`container:${stale.Id}`].at!) - Date.parse(String(stale.Created)))).toBeLessThan(1500);
    expect(byKey[`network:${network}`]).toMatchObject({ app: STALE, sizeBytes: 0 });
    expect(byKey["git:old-ui"].sizeBytes).toBe(du(join(ops, "git", "old-ui.git")));
    // nothing of the managed app, the unlabelled container or the other host's
    expect(JSON.stringify(items)).not.toContain(APP);
    expect(JSON.stringify(items)).not.toContain(BYSTANDER);
    expect(JSON.stringify(items)).not.toContain(THEIRS);
  });

  it("a dry run reports what would go and removes nothing", async () => {
    const o = await run("hosts.cleanup", { dryRun: true });
    expect(o.last).toMatchObject({ dryRun: true, ok: true, removed: [] });
    expect(o.last!.selected.map((s) => s.id).sort()).toEqual(o.scan!.items.filter((i) => i.id !== "shared-data").map((i) => i.id).sort());
    expect(o.last!.skipped).toEqual([expect.objectContaining({ kind: "workspace", id: "shared-data", reason: expect.stringMatching(/mounted by container .* which stays/) })]);
    expect(o.last!.freedBytes).toBeGreaterThanOrEqual(wsBytes);
    expect(await running(`${STALE}-app-1`)).toBe(true);
    expect(await exists(join(root, "old-ui", "model.safetensors"))).toBe(true);
    expect(await exists(join(ops, "git", "old-ui.git"))).toBe(true);
    expect(await exists(join(root, "escape"))).toBe(true);
    expect(o.scan!.foundTotal).toBe(7);
  });

  it("a forged item list cannot widen the removal: the managed app and foreign containers are not orphans", async () => {
    const bystander = (await inspect(BYSTANDER)).Id;
    const theirs = (await inspect(THEIRS)).Id;
    const o = await run("hosts.cleanup", {
      items: [
        { kind: "workspace", id: APP },
        { kind: "git", id: APP },
        { kind: "container", id: appContainer },
        { kind: "container", id: bystander },
        { kind: "container", id: theirs },
      ],
    });
    expect(o.last).toMatchObject({ dryRun: false, ok: true, removed: [] });
    expect(o.last!.skipped).toHaveLength(5);
    expect(o.last!.skipped.every((s) => /not an orphan/.test(s.reason ?? ""))).toBe(true);
    expect(await running(BYSTANDER)).toBe(true);
    expect(await running(THEIRS)).toBe(true);
    expect(await page()).toBe("still here\n");
  });

  it("removes the orphans; the unlabelled container, the other host's container and the managed app survive", async () => {
    const o = await run("hosts.cleanup", {});
    expect(o.last).toMatchObject({ dryRun: false, ok: true, failed: [] });
    expect(o.last!.removed.map((r) => `${r.kind}:${r.kind === "container" || r.kind === "network" ? r.name : r.id}`).sort()).toEqual(
      [`container:${STALE}-app-1`, `network:${STALE}_default`, `compose:${STALE}`, "git:old-ui", "workspace:old-ui", "workspace:escape"].sort(),
    );
    expect(o.last!.freedBytes).toBeGreaterThanOrEqual(wsBytes);
    // what is left: only the folder the unlabelled container mounts
    expect(o.scan!.items.map((i) => `${i.kind}:${i.id}`)).toEqual(["workspace:shared-data"]);

    await expect(inspect(`${STALE}-app-1`)).rejects.toThrow();
    await expect(docker(["network", "inspect", `${STALE}_default`])).rejects.toThrow();
    expect(await exists(join(root, "old-ui"))).toBe(false);
    expect(await exists(join(ops, "git", "old-ui.git"))).toBe(false);
    expect(await exists(join(ops, "compose", STALE))).toBe(false);
    expect(await exists(join(root, "escape"))).toBe(false);
    expect(await readFile(join(outside, "precious.txt"), "utf8")).toBe("do not touch");

    // survivors
    expect(await running(BYSTANDER)).toBe(true);
    expect(await running(THEIRS)).toBe(true);
    expect(await readFile(join(root, "shared-data", "db.sqlite"), "utf8")).toBe("theirs");
    expect(await listByLabel(`dcc.app=${APP}`)).toEqual([appContainer]);
    expect(await running(appContainer)).toBe(true);
    expect(await exists(join(root, APP, "index.html"))).toBe(true);
    expect(await exists(join(ops, "git", `${APP}.git`))).toBe(true);
    expect(await page()).toBe("still here\n");
    expect(await app()).toMatchObject({ status: "RUNNING", health: "reachable" });

    // on record: who asked, and what the agent removed
    const audit = await c.db().execute({ sql: "SELECT actor, action, outcome, detail FROM audit_log WHERE target = ? AND action LIKE 'host.%' ORDER BY id", args: [hostId] });
    const actions = audit.rows.map((r) => `${r.actor} ${r.action} ${r.outcome}`);
    expect(actions).toEqual(
      expect.arrayContaining(["token:admin-env host.orphans.scan ok", "token:admin-env host.cleanup ok", `agent:${hostId} host.cleanup.result ok`]),
    );
    const result = audit.rows.filter((r) => r.action === "host.cleanup.result").map((r) => JSON.parse(String(r.detail)));
    expect(result.at(-1)).toMatchObject({ removedCount: 6, removed: expect.arrayContaining([`workspace:${join(root, "old-ui")}`]) });
    // each command ran once on the agent
    const rows = await c.db().execute({ sql: "SELECT state, attempts FROM commands WHERE host_id = ? AND action = 'cleanup'", args: [hostId] });
    expect(rows.rows.every((r) => r.state === "done" && Number(r.attempts) === 1)).toBe(true);
  });

  it("needs the admin role", async () => {
    const t = await c.mutate<{ token: string }>("tokens.create", { name: "cleanup-operator", role: "operator" });
    const auth = { authorization: `Bearer ${t.body.result!.data.token}` };
    expect((await c.query("hosts.orphans", { id: hostId }, auth)).status).toBe(403);
    expect((await c.mutate("hosts.scanOrphans", { id: hostId }, auth)).status).toBe(403);
    expect((await c.mutate("hosts.cleanup", { id: hostId }, auth)).status).toBe(403);
    expect((await c.mutate("hosts.update", { id: hostId, autoCleanup: true }, auth)).status).toBe(403);
  });

  it("the Hosts page: Scan, Remove (dry run first) with a confirmation listing what goes, then removal; admins only", async () => {
    await mkdir(join(root, "page-orphan"));
    await writeFile(join(root, "page-orphan", "notes.txt"), "x".repeat(5000));
    const admin = await c.signIn();
    const post = async (fields: Record<string, string | string[]>, session = admin) => {
      const body = new URLSearchParams({ _csrf: session.csrfToken });
      for (const [k, v] of Object.entries(fields)) for (const x of [v].flat()) body.append(k, x);
      const r = await fetch(`${c.url}/hosts`, { method: "POST", headers: { cookie: session.cookie, "content-type": "application/x-www-form-urlencoded" }, body, redirect: "manual" });
      // React separates adjacent text with <!-- -->: drop those to read the text as shown.
      return { status: r.status, html: (await r.text()).replaceAll("<!-- -->", "") };
    };
    const page0 = await (await fetch(`${c.url}/hosts`, { headers: { cookie: admin.cookie } })).text();
    expect(page0).toContain(`data-orphans="${hostId}"`);

    const scanned = await post({ intent: "scan", hostId });
    expect(scanned.status).toBe(200);
    expect(scanned.html).toContain('data-orphan="workspace:page-orphan"');
    expect(scanned.html).toContain("Remove selected (dry run first)");

    const dry = await post({ intent: "dry-run", hostId, item: ["workspace:page-orphan"] });
    expect(dry.status).toBe(200);
    expect(dry.html).toContain('data-testid="orphans-confirm"');
    expect(dry.html).toMatch(/Dry run: this item would be removed \([\d.]+ KiB\)/);
    expect(dry.html).toContain(join(root, "page-orphan"));
    expect(dry.html).toContain("Remove this item");
    expect(await exists(join(root, "page-orphan", "notes.txt"))).toBe(true);

    const gone = await post({ intent: "remove", hostId, item: ["workspace:page-orphan"] });
    expect(gone.status).toBe(200);
    expect(gone.html).toContain('data-testid="orphans-removed"');
    expect(gone.html).not.toContain('data-orphan="workspace:page-orphan"');
    expect(await exists(join(root, "page-orphan"))).toBe(false);
    expect(await page()).toBe("still here\n");

    // Below admin: no panel, and the form action is refused.
    expect((await c.mutate("users.create", { username: "cleanup-viewer", password: "viewer-password-0123456789", role: "operator" })).status).toBe(200);
    const operator = await c.signIn("cleanup-viewer", "viewer-password-0123456789");
    const page1 = await (await fetch(`${c.url}/hosts`, { headers: { cookie: operator.cookie } })).text();
    expect(page1).toContain(`data-host="${hostId}"`);
    expect(page1).not.toContain("data-orphans=");
    expect((await post({ intent: "scan", hostId }, operator)).status).toBe(403);
  });

  it("the scheduled cleanup removes orphans older than its interval, on its own", async () => {
    const ws = join(root, "forgotten");
    await mkdir(ws);
    await writeFile(join(ws, "checkpoint.ckpt"), randomBytes(1000));
    for (const p of [join(ws, "checkpoint.ckpt"), ws]) await utimes(p, old, old);
    const u = await c.mutate<{ autoCleanup: boolean }>("hosts.update", { id: hostId, autoCleanup: true });
    expect(u.status, JSON.stringify(u.body)).toBe(200);
    expect(u.body.result!.data.autoCleanup).toBe(true);
    await waitFor("the scheduled cleanup removed the old orphan", async () => !(await exists(ws)), 60_000, 250);
    const o = await orphans();
    expect(o).toMatchObject({ autoCleanup: true, autoCleanupHours: 0.002 });
    const sched = await c.db().execute({ sql: "SELECT created_by, params FROM commands WHERE host_id = ? AND action = 'cleanup' AND created_by = 'system:auto-cleanup'", args: [hostId] });
    expect(sched.rows.length).toBeGreaterThanOrEqual(1);
    // every orphan at least one interval old; the apps the console records on the host are kept whatever happens
    expect(JSON.parse(String(sched.rows[0].params))).toEqual({ dryRun: false, minAgeSeconds: 7, keep: [APP] });
    const scheduled = await c.db().execute({ sql: "SELECT 1 FROM audit_log WHERE actor = 'system:auto-cleanup' AND action = 'host.cleanup' AND target = ?", args: [hostId] });
    expect(scheduled.rows.length).toBeGreaterThanOrEqual(1);
    expect((await c.mutate("hosts.update", { id: hostId, autoCleanup: false })).status).toBe(200);
    // still untouched
    expect(await running(BYSTANDER)).toBe(true);
    expect(await running(THEIRS)).toBe(true);
    expect(await exists(join(root, "shared-data", "db.sqlite"))).toBe(true);
    expect(await page()).toBe("still here\n");
  });
});
