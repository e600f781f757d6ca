// Notifications end to end: the built console with a real agent on the real Docker engine and a
// webhook receiver on loopback. A killed container → one signed JSON delivery naming the app (the
// README's verification recipe checks the signature); a stop someone asked for → none; a failed
// deploy → JSON and Slack messages; the receiver down, the console killed with SIGKILL and started
// again, the receiver up → the queued delivery arrives once; an agent gone for longer than the grace
// period → host offline. Targets follow the repository URL rules and keep their secrets sealed.
import { createHmac, timingSafeEqual } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, listByLabel, TEST_IMAGE } from "../support/docker";
import { startConsole, type RunningConsole } from "../support/console";
import { freePort } from "../support/net";
import { WebhookReceiver } from "../support/webhook-receiver";
import { waitFor } from "./agents";
import { startStack, type AppItem, type Stack } from "./stack-support";

const NAME = "notify-site";
const SECRET = "test-signing-secret-5f1e9c2a7b3d";
const ENV = { DCC_OSV_URL: "off", DCC_NOTIFY_RETRY_S: "1", DCC_HOST_OFFLINE_ALERT_S: "1" };
let s: Stack;
let c: RunningConsole;
let restarted: RunningConsole | null = null;
const rx = new WebhookReceiver();
let jsonTarget: string;

/** The README's recipe: HMAC-SHA256 over `<X-DCC-Timestamp>.<raw body>`, compared in constant time. */
function verify(secret: string, headers: Record<string, string | string[] | undefined>, rawBody: string): boolean {
  const ts = String(headers["x-dcc-timestamp"]);
  const expected = "sha256=" + createHmac("sha256", secret).update(`${ts}.${rawBody}`).digest("hex");
  const got = String(headers["x-dcc-signature"] ?? "");
  const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
  return fresh && got.length === expected.length && timingSafeEqual(Buffer.from(got), Buffer.from(expected));
}

const events = (kind: string) => rx.received.filter((r) => r.path === "/hook" && r.headers["x-dcc-event"] === kind);

async function app(): Promise<AppItem | undefined> {
  return (await c.query<AppItem>("apps.get", { name: NAME })).body.result?.data;
}

beforeAll(async () => {
  await rx.up();
  s = await startStack(ENV);
  c = s.c;
});
afterAll(async () => {
  await restarted?.stop().catch(() => {});
  await s?.close();
  await rx.down();
});

describe("notification targets", () => {
  it("create refuses bad input field by field and creates nothing", async () => {
    const bad = [
      [{ kind: "json", url: "http://169.254.169.254/latest/meta-data" }, "url"],
      [{ kind: "json", url: "http://metadata.google.internal/x" }, "url"],
      [{ kind: "email", url: `${rx.url}/hook` }, "kind"],
      [{ kind: "slack", url: `${rx.url}/hook`, secret: SECRET }, "secret"],
      [{ kind: "json", url: `${rx.url}/hook`, events: ["app.exploded"] }, "events.0"],
      [{ kind: "json", url: `${rx.url}/hook`, secret: "short" }, "secret"],
    ] as const;
    for (const [input, field] of bad) {
      const r = await c.mutate("notifications.create", input);
      expect(r.status, JSON.stringify(input)).toBe(400);
      expect(r.body.error!.data.code).toBe("BAD_REQUEST");
      expect(Object.keys(r.body.error!.data.fields ?? {})).toContain(field);
    }
    expect((await c.db().execute("SELECT count(*) AS n FROM notification_targets")).rows[0]!.n).toBe(0);
  });

  it("create (admin) keeps the URL and secret sealed; test delivers a signed message; last status is visible", async () => {
    const r = await c.mutate<{ item: { id: string; url: string; hasSecret: boolean }; secret?: string }>("notifications.create", { kind: "json", url: `${rx.url}/hook`, secret: SECRET });
    expect(r.status).toBe(200);
    expect(r.body.result!.data.secret).toBeUndefined();
    expect(r.body.result!.data.item).toMatchObject({ url: `${rx.url}/hook`, hasSecret: true });
    jsonTarget = r.body.result!.data.item.id;
    const generated = await c.mutate<{ item: { id: string }; secret?: string }>("notifications.create", { kind: "json", url: `${rx.url}/other/path/token`, events: ["host.offline"] });
    expect(generated.body.result!.data.secret).toMatch(/^whsec_/);
    const slack = await c.mutate<{ item: { id: string; url: string } }>("notifications.create", { kind: "slack", url: `${rx.url}/slack/T000/B000/XXXXSECRET`, events: ["deploy.failed"] });
    expect(slack.body.result!.data.item.url).toBe(`${rx.url}/slack/…`);

    const dump = JSON.stringify([
      (await c.db().execute("SELECT * FROM notification_targets")).rows,
      (await c.db().execute("SELECT * FROM audit_log")).rows,
    ]);
    for (const plain of [SECRET, "XXXXSECRET", generated.body.result!.data.secret!, "/other/path/token"]) expect(dump).not.toContain(plain);
    expect(c.output()).not.toContain(SECRET);

    const viewerRefused = await c.query("notifications.list", undefined, { authorization: "" });
    expect(viewerRefused.status).toBe(401);

    expect((await c.mutate("notifications.test", { id: jsonTarget })).status).toBe(200);
    const got = await waitFor("the test message", () => events("test")[0]);
    expect(verify(SECRET, got.headers, got.body)).toBe(true);
    expect(verify("another-secret-entirely-000", got.headers, got.body)).toBe(false);
    expect(JSON.parse(got.body)).toMatchObject({ event: "test", text: expect.stringContaining("Test notification") });
    const list = await waitFor("last status delivered", async () => {
      const items = (await c.query<{ items: { id: string; lastOutcome: string; lastHttpStatus: number }[] }>("notifications.list")).body.result!.data.items;
      const t = items.find((i) => i.id === jsonTarget);
      return t?.lastOutcome === "delivered" && t;
    });
    expect(list.lastHttpStatus).toBe(204);
  });
});

describe("events", () => {
  it("a killed container → one signed JSON delivery naming the app; a stop someone asked for → none", async () => {
    const repo = await s.git.createRepo(NAME, { "index.html": "<h1>hi</h1>\n" });
    const port = await freePort();
    const created = await c.mutate("apps.create", { name: NAME, repository: s.repoUrl(NAME), startCommand: "httpd -f -p $PORT -h /app", port, hostId: s.hostId });
    expect(created.status).toBe(200);
    await waitFor("RUNNING", async () => (await app())?.status === "RUNNING", 60_000, 200);
    expect((await app())!.commitSha).toBe(repo.sha);
    expect(events("app.stopped")).toHaveLength(0);

    const [id] = await listByLabel(`dcc.app=${NAME}`);
    await docker(["kill", id!]);
    const got = await waitFor("app.stopped delivery", () => events("app.stopped")[0], 20_000);
    expect(verify(SECRET, got.headers, got.body)).toBe(true);
    const body = JSON.parse(got.body);
    expect(body).toMatchObject({ event: "app.stopped", app: NAME, host: s.hostId });
    expect(body.text).toContain(NAME);
    expect(got.headers["x-dcc-delivery"]).toBe(body.id);
    await new Promise((r) => setTimeout(r, 2500));
    expect(events("app.stopped")).toHaveLength(1);

    // Asked for: start, then stop through the API → no notification.
    expect((await c.mutate("apps.start", { name: NAME })).status).toBe(200);
    await waitFor("RUNNING again", async () => (await app())?.status === "RUNNING", 60_000, 200);
    expect((await c.mutate("apps.stop", { name: NAME })).status).toBe(200);
    await waitFor("STOPPED", async () => (await app())?.status === "STOPPED", 30_000, 200);
    await new Promise((r) => setTimeout(r, 2500));
    expect(events("app.stopped")).toHaveLength(1);
  });

  it("a failed deploy → a JSON delivery and a Slack message", async () => {
    const port = await freePort();
    const r = await c.mutate("apps.create", { name: "notify-broken", repository: s.repoUrl("no-such-repo"), startCommand: "httpd -f -p $PORT -h /app", port, hostId: s.hostId });
    expect(r.status).toBe(200);
    const got = await waitFor("deploy.failed delivery", () => events("deploy.failed")[0], 60_000);
    expect(JSON.parse(got.body)).toMatchObject({ event: "deploy.failed", app: "notify-broken", detail: { action: "provision" } });
    const slack = await waitFor("Slack message", () => rx.json("/slack/T000/B000/XXXXSECRET")[0], 20_000);
    expect(Object.keys(slack)).toEqual(["text"]);
    expect(slack.text).toContain("notify-broken");
  });

  it("receiver down, console killed (SIGKILL) and restarted, receiver up → the app.stopped delivery arrives once", async () => {
    expect((await c.mutate("apps.start", { name: NAME })).status).toBe(200);
    await waitFor("RUNNING", async () => (await app())?.status === "RUNNING", 60_000, 200);
    await rx.down();
    const before = events("app.stopped").length;
    const [id] = await listByLabel(`dcc.app=${NAME}`);
    await docker(["kill", id!]);
    const row = await waitFor(
      "a failed first attempt",
      async () => {
        const r = await c.db().execute("SELECT id, state, attempts, last_error FROM notification_deliveries WHERE event = 'app.stopped' AND state = 'pending' AND attempts >= 1");
        return r.rows[0];
      },
      20_000,
    );
    expect(String(row.last_error)).toMatch(/ECONNREFUSED/);
    await c.stop(true);
    restarted = await startConsole({ dataDir: c.dataDir, port: c.port, env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: TEST_IMAGE, ...ENV } });
    await rx.up();
    const got = await waitFor("the delivery after the restart", () => events("app.stopped")[before], 30_000);
    expect(verify(SECRET, got.headers, got.body)).toBe(true);
    expect(JSON.parse(got.body)).toMatchObject({ id: row.id, event: "app.stopped", app: NAME });
    await new Promise((r) => setTimeout(r, 3000));
    expect(events("app.stopped")).toHaveLength(before + 1);
    const after = await restarted.db().execute({ sql: "SELECT state, attempts FROM notification_deliveries WHERE id = ?", args: [row.id] });
    expect(after.rows[0]).toMatchObject({ state: "delivered" });
    expect(Number(after.rows[0]!.attempts)).toBeGreaterThanOrEqual(2);
    c = restarted;
  });

  it("an agent gone for longer than the grace period → host offline", async () => {
    await waitFor("agent reconnected", async () => (await c.query<{ items: { id: string; online: boolean }[] }>("hosts.list")).body.result?.data.items.find((h) => h.id === s.hostId)?.online, 30_000, 200);
    await s.agent.stop();
    const got = await waitFor("host.offline delivery", () => rx.json("/other/path/token").find((b) => b.event === "host.offline"), 30_000);
    expect(got).toMatchObject({ event: "host.offline", host: s.hostId });
    expect(String(got.text)).toContain("offline");
  });
});
