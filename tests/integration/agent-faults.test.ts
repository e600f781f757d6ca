// Faults with real processes: the console killed (-9) between writing a command and receiving its
// result, the link cut mid-stream, and two console processes sharing one database. Every command
// completes exactly once (counted in the agent's own log of executions).
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startConsole, type RunningConsole } from "../support/console";
import { Relay, executions, startAgent, waitFor, type RunningAgent } from "./agents";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

async function consoleAt(opts: Parameters<typeof startConsole>[0] = {}) {
  const c = await startConsole(opts);
  cleanup.push(() => c.stop(true));
  return c;
}
async function agentFor(opts: Parameters<typeof startAgent>[0]) {
  const a = await startAgent(opts);
  cleanup.push(() => a.stop(true));
  return a;
}
async function enrolledAgent(c: RunningConsole, consoleUrl = `ws://127.0.0.1:${c.port}/agent`): Promise<{ agent: RunningAgent; hostId: string }> {
  const e = (await c.mutate<{ token: string }>("hosts.createEnrollment", {})).body.result!.data;
  const agent = await agentFor({ consoleUrl, token: e.token });
  const hostId = String((await agent.waitForLog("enrolled")).hostId);
  await agent.waitForLog("connected");
  return { agent, hostId };
}
async function ping(c: RunningConsole, hostId: string, delayMs = 0): Promise<string> {
  const r = await c.mutate<{ commandId: string }>("hosts.ping", { id: hostId, delayMs, echo: "x" });
  expect(r.status).toBe(200);
  return r.body.result!.data.commandId;
}
async function state(c: RunningConsole, id: string): Promise<{ state: string; attempts: number }> {
  const r = await c.db().execute({ sql: "SELECT state, attempts FROM commands WHERE id = ?", args: [id] });
  return { state: String(r.rows[0]?.state), attempts: Number(r.rows[0]?.attempts) };
}

describe("faults", () => {
  it("kill -9 of the console between a command and its result: after restart it completes, run once", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "dcc-console-"));
    let c = await consoleAt({ dataDir });
    const port = c.port;
    const { agent, hostId } = await enrolledAgent(c);

    const id = await ping(c, hostId, 1500);
    await agent.waitForLog("command verified", (e) => e.id === id);
    await c.stop(true);
    expect((await state(c, id)).state).not.toBe("done");
    // The agent finishes while the console is gone; its result has nowhere to go but the journal.
    await agent.waitForLog("command executed", (e) => e.id === id);

    c = await consoleAt({ dataDir, port });
    await waitFor("done after restart", async () => (await state(c, id)).state === "done", 30_000);
    expect(executions(agent, id)).toHaveLength(1);
    await agent.waitForLog("command replayed: already applied, answered from the journal, not run again", (e) => e.id === id);
    expect((await state(c, id)).attempts).toBe(2);

    // A command written while the console was down (here: before it started) is delivered on connect.
    await c.stop(true);
    const { createClient } = await import("@libsql/client");
    const db = createClient({ url: c.databaseUrl });
    const queued = "20000000-0000-4000-8000-000000000001";
    const now = Date.now();
    await db.execute({
      sql: "INSERT INTO commands (id, host_id, action, params, state, issued_at, expires_at) VALUES (?, ?, 'ping', '{}', 'pending', ?, ?)",
      args: [queued, hostId, new Date(now).toISOString(), new Date(now + 60_000).toISOString()],
    });
    db.close();
    c = await consoleAt({ dataDir, port });
    await waitFor("queued command done", async () => (await state(c, queued)).state === "done", 30_000);
    expect(executions(agent, queued)).toHaveLength(1);
  });

  it("cut link mid-stream: in-flight and queued commands all complete after reconnect, none twice", async () => {
    const c = await consoleAt();
    const relay = new Relay(c.port);
    await relay.start();
    cleanup.push(() => relay.close());
    const { agent, hostId } = await enrolledAgent(c, `ws://127.0.0.1:${relay.port}/agent`);

    const inFlight = [await ping(c, hostId, 600), await ping(c, hostId, 600), await ping(c, hostId, 600)];
    await agent.waitForLog("command verified", (e) => e.id === inFlight[2]);
    relay.cut();
    await agent.waitForLog("disconnected");
    await waitFor("host offline", async () => {
      const r = await c.query<{ online: boolean }>("hosts.get", { id: hostId });
      return r.body.result?.data.online === false;
    });
    const queued = [await ping(c, hostId), await ping(c, hostId), await ping(c, hostId)];
    for (const id of queued) expect((await state(c, id)).state).toBe("pending");
    relay.resume();

    const all = [...inFlight, ...queued];
    await waitFor("all done", async () => (await Promise.all(all.map((id) => state(c, id)))).every((s) => s.state === "done"), 40_000);
    for (const id of all) expect(executions(agent, id), id).toHaveLength(1);
    expect(executions(agent)).toHaveLength(all.length);
    // The in-flight ones were re-sent after reconnect and answered as replays (still running, or from the journal).
    for (const id of inFlight) {
      expect((await state(c, id)).attempts).toBe(2);
      expect(agent.logs().some((e) => e.msg.startsWith("command replayed") && e.id === id)).toBe(true);
    }
    for (const id of queued) expect((await state(c, id)).attempts).toBe(1);
  });

  it("two console processes on one database: a command written by one is delivered by the one holding the socket", async () => {
    const a = await consoleAt();
    const b = await consoleAt({ dataDir: a.dataDir });
    const { agent, hostId } = await enrolledAgent(a);
    const viaB = await b.query<{ items: { id: string; online: boolean }[] }>("hosts.list");
    expect(viaB.body.result!.data.items.find((h) => h.id === hostId)?.online).toBe(true);

    const id = await ping(b, hostId);
    await waitFor("done via the other process", async () => (await state(b, id)).state === "done", 10_000);
    expect(executions(agent, id)).toHaveLength(1);
    expect((await state(b, id)).attempts).toBe(1);
  });
});
