// The attack suite (tests/integration/attack.test.ts style) for the CI/CD endpoints: hostile
// names, fields, bodies and headers for apps.apply, apps.webhook, apps.webhookDelete and
// POST /hooks/deploy/<app>. Each must answer a 4xx, and leave no app, command, webhook, delivery
// id or file behind; the canary that any executed payload would create never appears.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConsole, type RunningConsole } from "../support/console";
import { deliver, delivery } from "../support/webhooks";

const CANARY = `/tmp/dcc-canary-${randomBytes(5).toString("hex")}`;
const VICTIM = "victim";
const HOST = "host-attack";
let c: RunningConsole;
let secret: string;

const SHELL = [`$(touch ${CANARY})`, `;touch ${CANARY}`, `| touch ${CANARY}`, `\`touch ${CANARY}\``, `x\ntouch ${CANARY}`, `x\u0000;touch ${CANARY}`];
const OPTIONS = [`--upload-pack=touch ${CANARY}`, "-p", "--privileged"];
const TRAVERSAL = ["../../etc", "..%2f..%2fetc", "..", ".", "/etc/passwd", "a/../../b"];
const CONFUSABLE = ["ａｐｐ", "\u0430pp", "app\u200b", "APP", "Victim"];
const CONTROL = ["a\u0000b", "a\rb", "a\nb", "a\u001b[2Jb"];
const LONG = ["a".repeat(64), "a".repeat(100_000)];
const NOT_STRINGS: unknown[] = [7860, ["app"], { $ne: null }, null, true];
const HOSTILE_NAMES: unknown[] = [...SHELL, ...OPTIONS, ...TRAVERSAL, ...CONFUSABLE, ...CONTROL, ...LONG, ...NOT_STRINGS, "", "app-", "__proto__", "a b"];

const show = (v: unknown) => {
  const t = JSON.stringify(v) ?? String(v);
  return t.length > 50 ? `${t.slice(0, 47)}…(${t.length})` : t;
};

async function snapshot() {
  const n = async (table: string) => Number((await c.db().execute(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  return { apps: await n("apps"), commands: await n("commands"), webhooks: await n("app_webhooks"), deliveries: await n("webhook_deliveries"), users: await n("users") };
}
let before: Awaited<ReturnType<typeof snapshot>>;

beforeAll(async () => {
  c = await startConsole();
  await c.db().execute({ sql: "INSERT INTO hosts (id, name, online, facts) VALUES (?, 'gpu-attack', 0, '{}')", args: [HOST] });
  expect((await c.mutate("apps.create", { name: VICTIM, repository: "https://github.com/example/app.git", startCommand: "run", port: 7860, hostId: HOST })).status).toBe(200);
  secret = (await c.mutate<{ secret: string }>("apps.webhook", { name: VICTIM })).body.result!.data.secret;
  await c.db().execute("UPDATE commands SET state = 'done'");
  before = await snapshot();
});
afterAll(async () => {
  await c?.dispose();
});

const spec = { name: "atk-ok", repository: "https://github.com/example/app.git", startCommand: "run", port: 7861, hostId: HOST };
type Case = [label: string, proc: string, input: unknown, field: string | null, statuses: number[]];
const cases: Case[] = [];
for (const v of HOSTILE_NAMES) cases.push([`apps.apply name ${show(v)}`, "apps.apply", { ...spec, name: v }, "name", [400]]);
for (const v of HOSTILE_NAMES) cases.push([`apps.webhook name ${show(v)}`, "apps.webhook", { name: v }, "name", [400]]);
for (const v of HOSTILE_NAMES) cases.push([`apps.webhookDelete name ${show(v)}`, "apps.webhookDelete", { name: v }, "name", [400]]);
for (const v of [`ext::sh -c touch% ${CANARY}`, `--upload-pack=touch ${CANARY}`, "file:///etc/passwd", "https://example.com/a\u0000.git", "http://169.254.169.254/x", 7]) {
  cases.push([`apps.apply repository ${show(v)} (new app)`, "apps.apply", { ...spec, repository: v }, "repository", [400]]);
  cases.push([`apps.apply repository ${show(v)} (existing app)`, "apps.apply", { ...spec, name: VICTIM, repository: v }, "repository", [400]]);
}
for (const v of [`run\u0000touch ${CANARY}`, "a\u001b[2J", "x".repeat(4097), "", 42]) cases.push([`apps.apply startCommand ${show(v)}`, "apps.apply", { ...spec, name: VICTIM, startCommand: v }, "startCommand", [400]]);
for (const v of ["7860", 80, 65536, 7860.5, null]) cases.push([`apps.apply port ${show(v)}`, "apps.apply", { ...spec, name: VICTIM, port: v }, "port", [400]]);
cases.push(["apps.apply prototype pollution", "apps.apply", JSON.parse(`{"name":"${VICTIM}","__proto__":{"startCommand":"touch ${CANARY}"}}`), "__proto__", [400]]);
cases.push(["apps.apply unknown field privileged", "apps.apply", { ...spec, name: VICTIM, privileged: true }, "privileged", [400]]);
cases.push(["apps.apply moves the victim to another host", "apps.apply", { ...spec, name: VICTIM, hostId: "elsewhere" }, "hostId", [400]]);
cases.push(["apps.apply array body", "apps.apply", [spec], null, [400]]);
cases.push(["apps.webhook rotate as a string", "apps.webhook", { name: VICTIM, rotate: "true" }, "rotate", [400]]);
cases.push(["apps.webhook extra field", "apps.webhook", { name: VICTIM, secret: "mine" }, "secret", [400]]);

describe("tRPC: apps.apply, apps.webhook, apps.webhookDelete", () => {
  it.each(cases)("%s", async (_label, proc, input, field, statuses) => {
    const r = await c.mutate(proc, input);
    expect(statuses, JSON.stringify(r.body).slice(0, 300)).toContain(r.status);
    if (field) expect(Object.keys(r.body.error?.data.fields ?? {})).toContain(field);
  });

  it("refuses an oversized apply body (413) and a wrong content type (415)", async () => {
    const big = JSON.stringify({ ...spec, startCommand: "x".repeat(1_100_000) });
    const r = await fetch(`${c.url}/api/trpc/apps.apply`, { method: "POST", headers: { ...c.authHeaders, "content-type": "application/json" }, body: big });
    expect(r.status).toBe(413);
    const form = await fetch(`${c.url}/api/trpc/apps.apply`, { method: "POST", headers: { ...c.authHeaders, "content-type": "application/x-www-form-urlencoded" }, body: "name=atk-ok" });
    expect(form.status).toBe(415);
  });
});

describe("POST /hooks/deploy/<app>", () => {
  const paths = ["..%2F..%2Fetc", "%00", "victim%00", "victim%0a", "VICTIM", "v%D1%96ctim", "victim%E2%80%8B", "a".repeat(64), "__proto__", "a%20b", "%24(touch%20x)", "-p", "%zz", "victim%2F..%2Fother"];
  it.each(paths)("refuses the app name %s", async (path) => {
    const d = delivery("github", { secret });
    const r = await fetch(`${c.url}/hooks/deploy/${path}`, { method: "POST", headers: d.headers, body: new Uint8Array(d.body) });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
  });

  it("refuses hostile delivery ids even with a good signature, and remembers none", async () => {
    for (const id of ["a".repeat(201), "../../etc", "$(touch x)", "a b"]) {
      const r = await deliver(c.url, VICTIM, delivery("github", { secret, deliveryId: id }));
      expect(r.status, id).toBe(400);
    }
  });

  it("refuses a signed body that is not JSON, one with no forge headers, and a chunked body over the limit", async () => {
    const notJson = await deliver(c.url, VICTIM, delivery("github", { secret, rawBody: Buffer.from("ref=refs/heads/main") }));
    expect(notJson.status).toBe(400);
    const bare = await fetch(`${c.url}/hooks/deploy/${VICTIM}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(bare.status).toBe(400);
    const d = delivery("github", { secret });
    const chunk = new Uint8Array(64 * 1024);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (sent >= 2 * 1024 * 1024) return ctrl.close();
        sent += chunk.length;
        ctrl.enqueue(chunk);
      },
    });
    const r = await fetch(`${c.url}/hooks/deploy/${VICTIM}`, { method: "POST", headers: d.headers, body: stream, duplex: "half" } as RequestInit);
    expect(r.status).toBe(413);
    const lying = await fetch(`${c.url}/hooks/deploy/${VICTIM}`, { method: "POST", headers: { ...d.headers, "content-length": String(50 * 1024 * 1024) }, body: new Uint8Array(d.body) }).catch(() => null);
    if (lying) expect(lying.status).toBe(413);
  });

  it("a flood of forged signatures queues nothing", async () => {
    for (let i = 0; i < 50; i++) {
      const r = await deliver(c.url, VICTIM, delivery(i % 2 ? "gitea" : "gitlab", { secret, signWith: `whsec_guess-${i}-0123456789abcdefghijkl` }));
      expect(r.status).toBe(401);
    }
  });
});

describe("afterwards", () => {
  it("left nothing behind and ran nothing", async () => {
    expect(await snapshot()).toEqual(before);
    expect(existsSync(CANARY)).toBe(false);
    expect((await c.query<{ status: string }>("apps.get", { name: VICTIM })).status).toBe(200);
  });
});
