// The console's side of "who owns status", against a fake agent that speaks the real protocol
// (the console is what is under test here; tests/faults runs the same rules end to end with the
// real agent and Docker): a no-op start ends in the observed state, a silent host goes offline and
// its apps grey, a command past its deadline fails naming the host and restores the observed state,
// cancel of a queued and of a delivered deploy, a revoked host's app removed by force, inventory as
// the truth on reconnect, and GPUs that two concurrent creates cannot both take.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppDto } from "../../app/services/apps.server";
import { startConsole, type RunningConsole } from "../support/console";
import { openSse, type SseReader } from "../support/sse";
import { FakeAgent, waitFor } from "./agents";

const REPO = "http://127.0.0.1:9/none.git";
const GPU_FACTS = {
  hostname: "gpu-fake",
  nvidia: { runtime: true, driverVersion: "550.54", gpus: [{ index: 0, uuid: "GPU-0", name: "H100", memoryMiB: 81559 }] },
};

let c: RunningConsole;
const fakes: FakeAgent[] = [];

async function enrolFake(facts?: Record<string, unknown>, inventory: unknown[] = []): Promise<FakeAgent> {
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  const f = new FakeAgent();
  await f.connect(e.consoleUrl, { token: e.token }, inventory, facts);
  fakes.push(f);
  return f;
}
const getApp = async (name: string) => (await c.query<AppDto>("apps.get", { name })).body.result?.data;
const commandRows = async (app: string) =>
  (await c.db().execute({ sql: "SELECT id, action, state, error, attempts, deadline_at FROM commands WHERE app_name = ? ORDER BY rowid", args: [app] })).rows as unknown as {
    id: string;
    action: string;
    state: string;
    error: string | null;
    attempts: number;
    deadline_at: string | null;
  }[];

function observed(app: string, status: "RUNNING" | "STARTING" | "STOPPED", health: "reachable" | "unreachable" | "unknown", lastError: string | null = null) {
  return { app, status, health, phase: null, lastError, at: new Date().toISOString() };
}


/** The next `apps.events` message (parsed) that matches. */
async function nextChange(sse: SseReader, pred: (m: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
  const parse = (data: string) => {
    try {
      return JSON.parse(data) as Record<string, unknown>;
    } catch {
      return null;
    }
  };
  const e = await sse.next((ev) => ev.event === "message" && Boolean(parse(ev.data) && pred(parse(ev.data)!)), timeoutMs);
  return parse(e.data)!;
}

beforeAll(async () => {
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_HOST_SILENT_S: "6", DCC_DEADLINE_DEPLOY_S: "5", DCC_DEADLINE_ACTION_S: "5" } });
});
afterAll(async () => {
  for (const f of fakes) f.ws?.terminate();
  await c?.dispose();
});

describe("status truth (console side)", () => {
  let f: FakeAgent;
  let stopAnswering: () => void = () => {};

  it("a no-op start on a running app ends in the agent's observation (green), not amber", async () => {
    f = await enrolFake();
    stopAnswering = f.autoAnswer((cmd) => ({ ok: true, result: { message: "already running" }, observed: observed(cmd.app!, "RUNNING", "reachable") }));
    expect((await c.mutate("apps.create", { name: "noop", repository: REPO, startCommand: "run", port: 20001, hostId: f.hostId })).status).toBe(200);
    await waitFor("provision answered", async () => (await getApp("noop"))?.status === "RUNNING");
    const r = await c.mutate<{ app: AppDto }>("apps.start", { name: "noop" });
    expect(r.body.result!.data.app.status).toBe("STARTING"); // queued: the console's one write
    const app = await waitFor("start answered", async () => {
      const a = await getApp("noop");
      return a?.status === "RUNNING" && a.health === "reachable" && a.phase === null ? a : null;
    });
    expect(app.hostOnline).toBe(true);
    // Start and restart carry the deploy spec: an app its host does not have gets deployed.
    const start = f.commands().map((m) => JSON.parse(m.payload)).find((p) => p.action === "start");
    expect(start.params.spec.name).toBe("noop");
    expect(Date.parse(start.deadlineAt)).toBeGreaterThan(Date.parse(start.issuedAt));
  });

  it("a command unanswered past its deadline fails naming the host, and the app shows what was observed", async () => {
    stopAnswering();
    stopAnswering = f.autoAnswer(() => null); // ack only: the agent never answers
    await c.mutate("apps.restart", { name: "noop" });
    expect((await getApp("noop"))!.status).toBe("STARTING");
    const failed = await waitFor("restart given up", async () => (await commandRows("noop")).find((r) => r.action === "restart" && r.state === "failed"), 30_000);
    expect(failed.error).toMatch(/restart got no answer from host .+ within/);
    const app = (await getApp("noop"))!;
    expect(app).toMatchObject({ status: "RUNNING", health: "reachable" });
    expect(app.lastError).toMatch(/got no answer from host/);
    // The signed deadline is fixed at the first send.
    expect(failed.deadline_at).not.toBeNull();
  });

  it("cancel of a delivered deploy ends it now, restores the observed state and tells the agent", async () => {
    await c.mutate("apps.reinstall", { name: "noop" });
    await waitFor("reinstall delivered", async () => (await commandRows("noop")).find((r) => r.action === "reinstall" && r.state === "delivered"));
    const r = await c.mutate<{ app: AppDto; commandId: string }>("apps.cancel", { name: "noop" });
    expect(r.status).toBe(200);
    expect(r.body.result!.data.app).toMatchObject({ status: "RUNNING", health: "reachable" });
    expect(r.body.result!.data.app.lastError).toMatch(/^cancelled by /);
    const rows = await commandRows("noop");
    expect(rows.find((x) => x.action === "reinstall")).toMatchObject({ state: "failed" });
    const cancel = await waitFor("cancel sent to the agent", () => f.commands().map((m) => JSON.parse(m.payload)).find((p) => p.action === "cancel"));
    expect(cancel.params.commandId).toBe(rows.find((x) => x.action === "reinstall")!.id);
    // Nothing left to cancel: a clear refusal naming the field.
    const again = await c.mutate("apps.cancel", { name: "noop" });
    expect(again.status).toBe(412);
    expect(again.body.error!.data.fields).toHaveProperty("name");
  });

  it("a silent agent (socket open, nothing received) takes its host offline and its apps grey, then back", async () => {
    stopAnswering();
    const sse = await openSse(`${c.url}/api/trpc/apps.events`, c.authHeaders);
    try {
      const t0 = Date.now();
      f.ws.pause(); // frozen box: no pong, no message, the TCP connection stays up
      const grey = await nextChange(sse, (m) => m.app === "noop" && m.hostOnline === false, 20_000);
      const lag = Date.now() - t0;
      console.log(`[status-truth] silent agent → grey at an SSE client after ${lag} ms`);
      expect(grey.health).toBe("unknown");
      const app = (await getApp("noop"))!;
      expect(app).toMatchObject({ hostOnline: false, health: "unknown", status: "RUNNING" });
      // Reconnect with an inventory that no longer has the app: it is STOPPED, not green.
      f.ws.terminate();
      const back = new FakeAgent();
      Object.assign(back, { keys: f.keys, privateKey: f.privateKey });
      await back.connect(`ws://127.0.0.1:${c.port}/agent`, { hostId: f.hostId }, []);
      fakes.push(back);
      f = back;
      await nextChange(sse, (m) => m.app === "noop" && m.hostOnline === true, 20_000);
      const after = await waitFor("inventory applied", async () => {
        const a = await getApp("noop");
        return a?.hostOnline && a.status === "STOPPED" ? a : null;
      });
      expect(after.lastError).toMatch(/not installed/);
    } finally {
      sse.close();
    }
  });

  it("a queued start on an offline host can be cancelled without reaching the agent", async () => {
    f.ws.terminate();
    await waitFor("host offline", async () => (await getApp("noop"))?.hostOnline === false);
    const r = await c.mutate<{ app: AppDto; queued: boolean }>("apps.start", { name: "noop" });
    expect(r.body.result!.data.queued).toBe(true);
    expect(r.body.result!.data.app.phase).toMatch(/queued: host offline/);
    const x = await c.mutate<{ app: AppDto; commandId: string | null }>("apps.cancel", { name: "noop" });
    expect(x.body.result!.data.commandId).toBeNull(); // never sent: nothing to tell the agent
    expect(x.body.result!.data.app).toMatchObject({ status: "STOPPED" });
    expect((await commandRows("noop")).filter((r) => r.action === "start").at(-1)).toMatchObject({ state: "failed", attempts: 0 });
  });

  it("a revoked host's app: actions refused with the way out; a forced removal frees name and port at once", async () => {
    const hostId = f.hostId;
    const rv = await c.mutate<{ apps: string[]; appsNote: string }>("hosts.revoke", { id: hostId });
    expect(rv.body.result!.data.apps).toEqual(["noop"]);
    expect(rv.body.result!.data.appsNote).toMatch(/force/);
    const start = await c.mutate("apps.start", { name: "noop" });
    expect(start.status).toBe(412);
    expect(start.body.error!.message).toMatch(/revoked host/);
    // A plain deinstall is refused as well (it could never reach the host).
    expect((await c.mutate("apps.deinstall", { name: "noop" })).status).toBe(412);
    const forced = await c.mutate<{ app: null }>("apps.deinstall", { name: "noop", force: true });
    expect(forced.status).toBe(200);
    expect(await getApp("noop")).toBeUndefined();
    const audit = await c.db().execute({ sql: "SELECT action FROM audit_log WHERE target = 'noop' ORDER BY rowid DESC LIMIT 1", args: [] });
    expect(audit.rows[0]?.action).toBe("app.deinstall.force");
    // Name and port are free again, on another host.
    const other = await enrolFake();
    expect((await c.mutate("apps.create", { name: "noop", repository: REPO, startCommand: "run", port: 20001, hostId: other.hostId })).status).toBe(200);
  });

  it("two concurrent creates never hold the same GPU", async () => {
    const g = await enrolFake(GPU_FACTS);
    const make = (name: string) =>
      c.mutate("apps.create", { name, repository: REPO, startCommand: "run", port: name === "gpu-a" ? 20011 : 20012, hostId: g.hostId, gpu: { mode: "required", count: 1 } });
    const [a, b] = await Promise.all([make("gpu-a"), make("gpu-b")]);
    const ok = [a, b].filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    const refused = [a, b].find((r) => r.status !== 200)!;
    expect(refused.body.error!.data.fields).toHaveProperty(refused.status === 409 ? "gpu" : "hostId");
    const held = await c.db().execute({ sql: "SELECT device, app_id FROM gpu_assignments WHERE host_id = ?", args: [g.hostId] });
    expect(held.rows).toHaveLength(1);
    // A forced removal releases the GPU (the trigger on apps keeps the table in step).
    const winner = a.status === 200 ? "gpu-a" : "gpu-b";
    expect((await c.mutate("apps.deinstall", { name: winner, force: true })).status).toBe(200);
    expect((await c.db().execute({ sql: "SELECT count(*) AS n FROM gpu_assignments WHERE host_id = ?", args: [g.hostId] })).rows[0].n).toBe(0);
  });
});
