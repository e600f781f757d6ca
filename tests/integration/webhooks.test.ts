// Deploy webhooks against the real console: GitHub, GitLab and Gitea deliveries (recorded shapes,
// really signed), bad and missing signatures, other branches, tags, replays, oversized bodies,
// rotation and removal of the secret, and that the secret never lands in the database in clear.
// The app's host is enrolled but offline, so a queued reinstall waits in the outbox, where the
// test reads it.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startConsole, type RunningConsole } from "../support/console";
import { deliver, delivery, FORGES, type Forge } from "../support/webhooks";

let c: RunningConsole;
let secret: string;
const APP = "hooked";
const HOST = "host-webhooks";

const count = async (sql: string, args: (string | number)[] = []) => Number((await c.db().execute({ sql, args })).rows[0].n);
const reinstalls = () => count("SELECT count(*) AS n FROM commands WHERE app_name = ? AND action = 'reinstall'", [APP]);
const lastAudit = async () => (await c.db().execute("SELECT actor, target, outcome, detail FROM audit_log WHERE action = 'webhook.deliver' ORDER BY id DESC LIMIT 1")).rows[0];
const lastEvent = async () => {
  const r = await c.query<{ items: Record<string, unknown>[] }>("apps.timeline", { name: APP, limit: 1 });
  return r.body.result!.data.items[0];
};

beforeAll(async () => {
  c = await startConsole();
  await c.db().execute({ sql: "INSERT INTO hosts (id, name, online, facts) VALUES (?, 'gpu-test', 0, '{}')", args: [HOST] });
  const created = await c.mutate("apps.create", { name: APP, repository: "https://github.com/example/app.git", startCommand: "run", port: 7860, hostId: HOST });
  expect(created.status).toBe(200);
  const hook = await c.mutate<{ url: string; secret: string | null }>("apps.webhook", { name: APP });
  expect(hook.status).toBe(200);
  expect(hook.body.result!.data.url).toBe(`${c.url}/hooks/deploy/${APP}`);
  secret = hook.body.result!.data.secret!;
  expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
});
afterAll(async () => {
  await c?.dispose();
});
// Each test starts with no command in flight, so a queued reinstall is a new row.
beforeEach(async () => {
  await c.db().execute("UPDATE commands SET state = 'done'");
});

describe("the webhook secret", () => {
  it("is shown once, and never stored, logged or audited in clear", async () => {
    const again = await c.mutate<{ secret: string | null }>("apps.webhook", { name: APP });
    expect(again.body.result!.data.secret).toBeNull();
    const sealed = String((await c.db().execute("SELECT secret_sealed FROM app_webhooks")).rows[0].secret_sealed);
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain(secret);
    // A delivery first, so audit and events hold webhook rows too.
    expect((await deliver(c.url, APP, delivery("github", { secret, branch: "nope" }))).status).toBe(200);
    for (const file of await readdir(c.dataDir)) {
      if (!file.startsWith("dcc.db")) continue;
      expect((await readFile(join(c.dataDir, file))).includes(Buffer.from(secret)), file).toBe(false);
    }
    expect(c.output()).not.toContain(secret);
  });

  it("answers NOT_FOUND for an unknown app (roles: auth-matrix.test.ts)", async () => {
    expect((await c.mutate("apps.webhook", { name: "no-such-app" })).status).toBe(404);
  });
});

describe.each(FORGES)("%s deliveries", (forge: Forge) => {
  it("queue a reinstall for a push to the app's branch, audited and on the timeline", async () => {
    const before = await reinstalls();
    const r = await deliver(c.url, APP, delivery(forge, { secret }));
    expect(r.status, r.text).toBe(202);
    expect(r.body).toMatchObject({ ok: true, outcome: "queued", branch: "main" });
    expect(await reinstalls()).toBe(before + 1);
    const cmd = (await c.db().execute({ sql: "SELECT id, created_by FROM commands WHERE app_name = ? AND action = 'reinstall' ORDER BY issued_at DESC LIMIT 1", args: [APP] })).rows[0];
    expect(r.body.commandId).toBe(cmd.id);
    expect(cmd.created_by).toBe(`webhook:${forge}`);
    const audit = await lastAudit();
    expect([audit.actor, audit.target, audit.outcome]).toEqual([`webhook:${forge}`, APP, "ok"]);
    expect(await lastEvent()).toMatchObject({ type: "webhook", forge, outcome: "queued", branch: "main" });
  });

  it("refuse a wrong or missing signature with 401 and queue nothing", async () => {
    const before = await reinstalls();
    for (const d of [delivery(forge, { secret, signWith: "whsec_not-the-secret-at-all-0123456789abcdef" }), delivery(forge, { secret, unsigned: true })]) {
      const r = await deliver(c.url, APP, d);
      expect(r.status).toBe(401);
      expect((await lastAudit()).outcome).toBe("denied");
      expect(await lastEvent()).toMatchObject({ type: "webhook", outcome: "refused" });
    }
    // The signature covers the exact bytes: the same signature over a changed body fails.
    const good = delivery(forge, { secret });
    const tampered = { headers: good.headers, body: Buffer.from(good.body.toString().replace("refs/heads/main", "refs/heads/main ")) };
    if (forge !== "gitlab") expect((await deliver(c.url, APP, tampered)).status).toBe(401);
    expect(await count("SELECT count(*) AS n FROM webhook_deliveries WHERE delivery_id = ?", [good.deliveryId])).toBe(0);
    expect(await reinstalls()).toBe(before);
  });

  it("ignore pushes to another branch and tags", async () => {
    const before = await reinstalls();
    const other = await deliver(c.url, APP, delivery(forge, { secret, branch: "feature/x" }));
    expect(other.status).toBe(200);
    expect(other.body).toMatchObject({ outcome: "ignored" });
    expect(String(other.body.reason)).toContain("not to the app's branch main");
    const tag = await deliver(c.url, APP, delivery(forge, { secret, ref: "refs/tags/v1.0.0" }));
    expect(tag.body).toMatchObject({ outcome: "ignored", reason: "not a branch push" });
    expect(await reinstalls()).toBe(before);
    expect(await lastEvent()).toMatchObject({ type: "webhook", outcome: "ignored" });
  });

  it("ignore a replayed delivery id", async () => {
    const d = delivery(forge, { secret });
    expect((await deliver(c.url, APP, d)).status).toBe(202);
    await c.db().execute("UPDATE commands SET state = 'done'");
    const before = await reinstalls();
    const replay = await deliver(c.url, APP, d);
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({ outcome: "ignored", reason: "replayed delivery" });
    expect(await reinstalls()).toBe(before);
  });
});

describe("limits and lifecycle of the secret", () => {
  it("refuses a body over 1 MiB with 413 (audited, nothing queued)", async () => {
    const before = await reinstalls();
    const big = Buffer.from(JSON.stringify({ ref: "refs/heads/main", repository: { default_branch: "main" }, pad: "x".repeat(1024 * 1024) }));
    const r = await deliver(c.url, APP, delivery("github", { secret, rawBody: big }));
    expect(r.status).toBe(413);
    const audit = await lastAudit();
    expect(audit.outcome).toBe("denied");
    expect(String(audit.detail)).toContain("larger than");
    expect(await reinstalls()).toBe(before);
  });

  it("answers an unknown app exactly like a bad signature", async () => {
    const r = await deliver(c.url, "no-such-app", delivery("github", { secret }));
    expect(r.status).toBe(401);
    expect(r.body.reason).toBe("invalid signature (no such app)");
  });

  it("answers a GitHub ping without deploying", async () => {
    const d = delivery("github", { secret });
    d.headers["x-github-event"] = "ping";
    const r = await deliver(c.url, APP, d);
    expect([r.status, r.body.outcome, r.body.reason]).toEqual([200, "ignored", "ping"]);
  });

  it("refuses the old secret after rotation, and everything after removal", async () => {
    const rotated = await c.mutate<{ secret: string }>("apps.webhook", { name: APP, rotate: true });
    const fresh = rotated.body.result!.data.secret;
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(secret);
    expect((await deliver(c.url, APP, delivery("gitea", { secret }))).status).toBe(401);
    expect((await deliver(c.url, APP, delivery("gitea", { secret: fresh }))).status).toBe(202);
    expect((await c.mutate("apps.webhookDelete", { name: APP })).body).toMatchObject({ result: { data: { deleted: true } } });
    const gone = await deliver(c.url, APP, delivery("gitea", { secret: fresh }));
    expect([gone.status, gone.body.reason]).toEqual([401, "invalid signature (the app has no webhook)"]);
    const actions = (await c.db().execute({ sql: "SELECT action FROM audit_log WHERE target = ? AND action LIKE 'app.webhook.%' ORDER BY id", args: [APP] })).rows.map((r) => r.action);
    expect(actions).toEqual(["app.webhook.create", "app.webhook.rotate", "app.webhook.delete"]);
  });
});
