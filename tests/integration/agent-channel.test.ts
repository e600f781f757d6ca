// The console and the built agent as separate processes over a real websocket: enrolment,
// presence in hosts.list, a signed command and its result, offline on death, reconnect, the
// console's refusals (reused token, revoked host, malformed/oversized frames, another host's app),
// and dead-peer detection.
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDENTITY_FILE, publicKeyFingerprint } from "../../agent/src/contract/protocol";
import { startConsole, type RunningConsole } from "../support/console";
import { freePort } from "../support/net";
import { FakeAgent, executions, startAgent, waitFor, type RunningAgent } from "./agents";

type HostItem = { id: string; name: string; online: boolean; lastSeenAt: string | null; address: string | null; facts: Record<string, unknown>; revoked: boolean };

let c: RunningConsole;
const agents: RunningAgent[] = [];

async function enrollment(name?: string) {
  const r = await c.mutate<{ token: string; command: string; consoleUrl: string; consolePublicKey: string; consoleFingerprint: string; expiresAt: string }>(
    "hosts.createEnrollment",
    name ? { name } : {},
  );
  expect(r.status).toBe(200);
  return r.body.result!.data;
}
async function hostList(): Promise<HostItem[]> {
  const r = await c.query<{ items: HostItem[] }>("hosts.list");
  expect(r.status).toBe(200);
  return r.body.result!.data.items;
}
const host = async (id: string) => (await hostList()).find((h) => h.id === id);
async function agent(opts: Parameters<typeof startAgent>[0]) {
  const a = await startAgent(opts);
  agents.push(a);
  return a;
}
async function commandRow(id: string) {
  const r = await c.db().execute({ sql: "SELECT state, attempts, result, error FROM commands WHERE id = ?", args: [id] });
  return r.rows[0] as unknown as { state: string; attempts: number; result: string | null; error: string | null } | undefined;
}

beforeAll(async () => {
  c = await startConsole({ env: { DCC_BASE_IMAGE: "dcc-test/busybox:1" } });
});
afterAll(async () => {
  for (const a of agents) await a.stop(true);
  await c?.dispose();
});

describe("agent channel", () => {
  let first: RunningAgent;
  let hostId: string;

  it("enrols with a one-time token, shows the host online with its facts, and runs a signed ping", async () => {
    const e = await enrollment("gpu-box-1");
    expect(e.token).toMatch(/^dcce_[A-Za-z0-9_-]{43}$/);
    expect(e.consoleUrl).toBe(`ws://127.0.0.1:${c.port}/agent`);
    expect(e.command).toContain(`--enroll ${e.token}`);
    expect(e.command).toContain(`--console-fingerprint ${e.consoleFingerprint}`);
    expect(e.consoleFingerprint).toBe(publicKeyFingerprint(e.consolePublicKey));
    // Only the token's hash is stored; the console key file is private.
    const stored = await c.db().execute("SELECT token_hash FROM enrollments");
    expect(JSON.stringify(stored.rows)).not.toContain(e.token);
    expect(statSync(join(c.dataDir, "console-signing-key.pem")).mode & 0o777).toBe(0o600);

    first = await agent({ consoleUrl: e.consoleUrl, token: e.token, args: ["--console-fingerprint", e.consoleFingerprint] });
    const enrolled = await first.waitForLog("enrolled");
    hostId = String(enrolled.hostId);
    const h = await waitFor("host online", async () => (await host(hostId))?.online && (await host(hostId)));
    expect(h).toMatchObject({ name: "gpu-box-1", online: true, address: "127.0.0.1", revoked: false });
    expect(h.lastSeenAt).toBeTruthy();
    expect(h.facts).toMatchObject({ agentVersion: "0.1.0", hostname: expect.any(String), cpus: expect.any(Number) });
    expect(statSync(join(first.stateDir, "agent-key.pem")).mode & 0o777).toBe(0o600);
    const identity = JSON.parse(await readFile(join(first.stateDir, IDENTITY_FILE), "utf8"));
    expect(identity).toMatchObject({ hostId, consolePublicKey: e.consolePublicKey });

    const ping = await c.mutate<{ commandId: string }>("hosts.ping", { id: hostId, echo: "hello" });
    expect(ping.status).toBe(200);
    const id = ping.body.result!.data.commandId;
    const row = await waitFor("ping done", async () => ((await commandRow(id))?.state === "done" ? commandRow(id) : null));
    expect(JSON.parse(row.result!)).toMatchObject({ pong: true, echo: "hello" });
    expect(Number(row.attempts)).toBe(1);
    expect(first.find("command verified").map((l) => l.id)).toContain(id);
    expect(executions(first, id)).toHaveLength(1);

    const audit = await c.db().execute("SELECT action, outcome FROM audit_log WHERE action LIKE 'host.%' ORDER BY id");
    expect(audit.rows.map((r) => `${r.action}:${r.outcome}`)).toEqual(expect.arrayContaining(["host.enrollment.create:ok", "host.enroll:ok"]));
  });

  it("hosts.get and hosts.update name the host; the rename is audited", async () => {
    const r = await c.mutate<HostItem>("hosts.update", { id: hostId, name: "gpu-box-one" });
    expect(r.status).toBe(200);
    expect(r.body.result!.data.name).toBe("gpu-box-one");
    const got = await c.query<HostItem>("hosts.get", { id: hostId });
    expect(got.body.result!.data).toMatchObject({ id: hostId, name: "gpu-box-one", online: true });
    expect((await c.mutate("hosts.update", { id: hostId, name: "-bad name" })).status).toBe(400);
    expect((await c.query("hosts.get", { id: "no-such-host" })).status).toBe(404);
    const audit = await c.db().execute({ sql: "SELECT target FROM audit_log WHERE action = 'host.update'", args: [] });
    expect(audit.rows.map((r) => r.target)).toContain(hostId);
  });

  it("shows the host offline when the agent dies, and back online when it restarts", async () => {
    await first.stop(true);
    await waitFor("host offline", async () => (await host(hostId))?.online === false);
    const healthPort = await freePort();
    const again = await agent({ consoleUrl: `ws://127.0.0.1:${c.port}/agent`, stateDir: first.stateDir, args: ["--health-port", String(healthPort)] });
    await again.waitForLog("connected");
    await waitFor("host online again", async () => (await host(hostId))?.online);
    const health = await (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).json();
    expect(health).toEqual({ ok: true, version: "0.1.0", hostId, connected: true, logFollows: 0 });
    expect((await hostList()).filter((h) => h.id === hostId)).toHaveLength(1);
    first = again;
  });

  it("refuses a reused enrolment token and an expired one: the agent exits, no host is added", async () => {
    const e = await enrollment();
    const ok = await agent({ consoleUrl: e.consoleUrl, token: e.token });
    await ok.waitForLog("connected");
    const before = (await hostList()).length;

    const reuse = await agent({ consoleUrl: e.consoleUrl, token: e.token });
    expect(await reuse.exited).toBe(2);
    expect(reuse.find("the console refused this agent")[0]).toMatchObject({ reason: "enrolment token was already used" });
    expect(c.output()).toContain("enrolment token was already used");

    const late = await enrollment();
    await c.db().execute({ sql: "UPDATE enrollments SET expires_at = ? WHERE used_at IS NULL", args: [new Date(Date.now() - 1000).toISOString()] });
    const expired = await agent({ consoleUrl: late.consoleUrl, token: late.token });
    expect(await expired.exited).toBe(2);
    expect(expired.find("the console refused this agent")[0]).toMatchObject({ reason: "enrolment token has expired" });

    expect((await hostList()).length).toBe(before);
    const denied = await c.db().execute("SELECT count(*) AS n FROM audit_log WHERE action = 'host.enroll' AND outcome = 'denied'");
    expect(Number(denied.rows[0].n)).toBe(2);
    await ok.stop();
  });

  it("closes a malformed or oversized message with a clear reason", async () => {
    const e = await enrollment();
    const fake = new FakeAgent();
    await fake.connect(e.consoleUrl, { token: e.token });
    fake.send("{not json");
    expect(await fake.closed).toEqual({ code: 4000, reason: "malformed message: not JSON" });

    const big = new FakeAgent();
    (big as { keys: unknown }).keys = fake.keys;
    (big as { privateKey: unknown }).privateKey = fake.privateKey;
    await big.connect(e.consoleUrl, { hostId: fake.hostId });
    big.send({ type: "log", lines: [{ app: "x", stream: "stdout", line: "x".repeat(10_000), at: "t" }], pad: "y".repeat(2 * 1024 * 1024) });
    expect((await big.closed).code).toBe(1009);

    const rude = new FakeAgent();
    await expect(rude.connect(e.consoleUrl, { hostId: "no-such-host" })).rejects.toThrow(/4004/);
    expect(c.output()).toContain("malformed message: not JSON");
  });

  it("applies a host's reports about its own apps and refuses its reports about another host's app", async () => {
    const [ea, eb] = [await enrollment("host-a"), await enrollment("host-b")];
    const a = new FakeAgent();
    const b = new FakeAgent();
    await a.connect(ea.consoleUrl, { token: ea.token });
    await b.connect(eb.consoleUrl, { token: eb.token });
    const created = await c.mutate("apps.create", { name: "owned-by-a", repository: "https://example.com/x/y.git", startCommand: "run", port: 7001, hostId: a.hostId });
    expect(created.status).toBe(200);
    await waitFor("provision delivered to a", () => a.commands().length > 0);
    expect(b.commands()).toHaveLength(0);

    const at = new Date().toISOString();
    b.send({ type: "status", reports: [{ app: "owned-by-a", status: "RUNNING", health: "reachable", at }] });
    b.send({ type: "usage", samples: [{ app: "owned-by-a", cpuPct: 99, memoryBytes: 1, at }] });
    await waitFor("refusal logged", () => c.output().includes(`"kind":"status","app":"owned-by-a","reason":"app owned-by-a belongs to host ${a.hostId}`));
    await waitFor("usage refusal logged", () => c.output().includes(`"kind":"usage","app":"owned-by-a"`));
    const untouched = await c.query<{ status: string; usage: unknown }>("apps.get", { name: "owned-by-a" });
    expect(untouched.body.result!.data).toMatchObject({ status: "STARTING", usage: null });

    a.send({ type: "status", reports: [{ app: "owned-by-a", status: "RUNNING", health: "reachable", phase: null, at }] });
    a.send({ type: "usage", samples: [{ app: "owned-by-a", cpuPct: 12.5, memoryBytes: 1024, at }] });
    await waitFor("a's report applied", async () => {
      const r = await c.query<{ status: string; health: string; usage: { cpuPct: number } | null }>("apps.get", { name: "owned-by-a" });
      const d = r.body.result!.data;
      return d.status === "RUNNING" && d.health === "reachable" && d.usage?.cpuPct === 12.5;
    });
    const ev = await c.db().execute("SELECT type, data FROM app_events WHERE app_name = 'owned-by-a' AND type = 'status'");
    expect(ev.rows).toHaveLength(1);
    a.ws.close();
    b.ws.close();
  });

  it("revoking a host closes its socket at once and refuses its agent from then on", async () => {
    const t0 = Date.now();
    const r = await c.mutate<HostItem>("hosts.revoke", { id: hostId });
    expect(r.status).toBe(200);
    expect(r.body.result!.data).toMatchObject({ revoked: true, online: false });
    const closed = await first.waitForLog("disconnected", (e) => e.code === 4003, 5000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(closed.reason).toBe("host revoked");
    expect(await first.exited).toBe(3);

    const retry = await agent({ consoleUrl: `ws://127.0.0.1:${c.port}/agent`, stateDir: first.stateDir });
    expect(await retry.exited).toBe(3);
    expect(retry.find("the console refused this agent")[0]).toMatchObject({ code: 4003, reason: "host revoked: its agent is refused" });
    expect((await host(hostId))?.online).toBe(false);
    const audit = await c.db().execute({ sql: "SELECT count(*) AS n FROM audit_log WHERE action = 'host.revoke' AND target = ?", args: [hostId] });
    expect(Number(audit.rows[0].n)).toBe(1);
  });
});

describe("waiting apps", () => {
  it("are placed on the first host that connects, provisioned with the resolved spec, and a deinstall removes the record", async () => {
    const local = await startConsole({ env: { DCC_BASE_IMAGE: "dcc-test/busybox:1" } });
    try {
      await local.mutate("apps.create", { name: "early", repository: "https://example.com/x/early.git", startCommand: "serve", port: 7100 });
      const waiting = await local.query<{ status: string; phase: string; hostId: string | null }>("apps.get", { name: "early" });
      expect(waiting.body.result!.data).toMatchObject({ status: "STOPPED", phase: "waiting for a host", hostId: null });

      const e = (await local.mutate<{ token: string; consoleUrl: string; consolePublicKey: string }>("hosts.createEnrollment", {})).body.result!.data;
      const fake = new FakeAgent();
      await fake.connect(e.consoleUrl, { token: e.token });
      const [cmd] = await waitFor("provision delivered", () => fake.commands().length && fake.commands());
      const { verifyCommand, publicKeyFromBase64 } = await import("../../agent/src/contract/protocol");
      const checked = verifyCommand(cmd, publicKeyFromBase64(e.consolePublicKey));
      expect(checked.ok).toBe(true);
      if (!checked.ok) return;
      expect(checked.payload).toMatchObject({ hostId: fake.hostId, app: "early", action: "provision" });
      expect(checked.payload.params).toMatchObject({ spec: { name: "early", port: 7100, image: "dcc-test/busybox:1", gpuDevices: [], capAdd: [], keepPaths: [] } });
      const placed = await local.query<{ status: string; hostId: string }>("apps.get", { name: "early" });
      expect(placed.body.result!.data).toMatchObject({ status: "STARTING", hostId: fake.hostId });

      // A failed provision leaves the app STOPPED with the reason.
      fake.send({ type: "ack", id: checked.payload.id });
      fake.send({ type: "result", id: checked.payload.id, ok: false, error: "image dcc-test/busybox:1 not found" });
      await waitFor("failure applied", async () => {
        const d = (await local.query<{ status: string; lastError: string | null }>("apps.get", { name: "early" })).body.result!.data;
        return d.status === "STOPPED" && d.lastError?.includes("not found");
      });

      // Deinstall: the record goes when the agent reports success; events stay; template links clear.
      const appId = String((await local.db().execute("SELECT id FROM apps WHERE name = 'early'")).rows[0].id);
      await local.db().execute({ sql: "UPDATE marketplace_templates SET origin_app_id = ? WHERE slug = 'comfyui'", args: [appId] });
      expect((await local.mutate("apps.deinstall", { name: "early" })).status).toBe(200);
      const deinstall = await waitFor("deinstall delivered", () => fake.commands().find((m) => JSON.parse(m.payload).action === "deinstall"));
      const did = JSON.parse(deinstall.payload).id;
      fake.send({ type: "ack", id: did });
      fake.send({ type: "result", id: did, ok: true, result: {} });
      await waitFor("record removed", async () => (await local.query("apps.get", { name: "early" })).status === 404);
      const events = await local.db().execute("SELECT type FROM app_events WHERE app_name = 'early' ORDER BY id");
      expect(events.rows.map((r) => r.type)).toEqual(expect.arrayContaining(["created", "placed", "result", "deleted"]));
      const link = await local.db().execute("SELECT origin_app_id FROM marketplace_templates WHERE slug = 'comfyui'");
      expect(link.rows[0].origin_app_id).toBeNull();
      fake.ws.close();
    } finally {
      await local.dispose();
    }
  });
});

describe("dead peers", () => {
  it("marks a host offline within 15 s when its agent goes silent (no pong, socket open), and takes it back when it wakes", async () => {
    const e = await enrollment("sleepy");
    const a = await agent({ consoleUrl: e.consoleUrl, token: e.token });
    const id = String((await a.waitForLog("enrolled")).hostId);
    await a.waitForLog("connected");
    const t0 = Date.now();
    a.proc.kill("SIGSTOP");
    try {
      await waitFor("host offline", async () => (await host(id))?.online === false, 40_000, 250);
      console.log(`[agent-channel] SIGSTOP → host offline after ${Date.now() - t0} ms`);
      expect(c.output()).toMatch(/agent connection dead.*silent for \d+ s/);
    } finally {
      a.proc.kill("SIGCONT");
    }
    await waitFor("host online again", async () => (await host(id))?.online, 40_000, 250);
  }, 120_000);
});
