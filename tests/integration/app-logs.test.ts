// apps.logs and apps.logFollow with real processes: the console, the built agent (dialling through
// a relay the test can cut), a git server and the real Docker engine running a busybox app that
// prints a line every 0.2 s. A scripted fake agent on a second host checks what the hub accepts.
import type { AppDto as AppItem } from "../../app/services/apps.server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConsoleMessage } from "../../agent/src/contract/protocol";
import { dockerAvailable, removeByLabel } from "../support/docker";
import { startConsole, type RunningConsole } from "../support/console";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";
import { openSse, type SseReader } from "../support/sse";
import { FakeAgent, Relay, startAgent, waitFor, type RunningAgent } from "./agents";

let c: RunningConsole;
let git: GitServer;
let agent: RunningAgent;
let relay: Relay;
let hostId: string;
let healthPort: number;

type Line = { app: string; stream: string; line: string; at: string };
type Batch = { lines: Line[]; dropped?: number; ended?: string };

const APP = "ticker";
const followUrl = (input: unknown) => `${c.url}/api/trpc/apps.logFollow?input=${encodeURIComponent(JSON.stringify(input))}`;
const health = async () => (await (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).json()) as { connected: boolean; logFollows: number };
const batches = (sse: SseReader, timeoutMs = 10_000) => sse.next((e) => e.event === "message", timeoutMs).then((e) => JSON.parse(e.data) as Batch);
const errorEvent = (sse: SseReader, timeoutMs = 15_000) =>
  sse.next((e) => e.event === "serialized-error", timeoutMs).then((e) => JSON.parse(e.data) as { message: string; data: { code: string; httpStatus: number } });

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  git = await startGitServer();
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: "dcc-test/busybox:1" } });
  relay = new Relay(c.port);
  await relay.start();
  const e = (await c.mutate<{ token: string }>("hosts.createEnrollment", {})).body.result!.data;
  healthPort = await freePort();
  agent = await startAgent({
    consoleUrl: `ws://127.0.0.1:${relay.port}/agent`,
    token: e.token,
    args: ["--allow-insecure-git", "--health-port", String(healthPort)],
  });
  hostId = String((await agent.waitForLog("enrolled")).hostId);
  await agent.waitForLog("connected");

  const repo = await git.createRepo(APP, { "index.html": "tick tock\n" });
  const port = await freePort();
  const created = await c.mutate("apps.create", {
    name: APP,
    repository: repo.url,
    startCommand: "while true; do echo tick $(date +%s); sleep 0.2; done & httpd -f -p $PORT -h /app",
    port,
    hostId,
  });
  expect(created.status).toBe(200);
  await waitFor(
    "RUNNING and reachable",
    async () => {
      const a = (await c.query<AppItem>("apps.get", { name: APP })).body.result?.data;
      if (a?.lastError) throw new Error(a.lastError);
      return a?.status === "RUNNING" && a.health === "reachable";
    },
    60_000,
    200,
  );
});
afterAll(async () => {
  await agent?.stop(true);
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await relay?.close();
  await c?.dispose();
  await git?.close();
});

describe("apps.logs", () => {
  it("returns the app's last lines from its host's agent", async () => {
    await waitFor("a few ticks", async () => ((await c.query<{ items: Line[] }>("apps.logs", { name: APP, tail: 5 })).body.result?.data.items.length ?? 0) >= 5, 20_000, 200);
    const r = await c.query<{ items: Line[] }>("apps.logs", { name: APP, tail: 5 });
    expect(r.status).toBe(200);
    const items = r.body.result!.data.items;
    expect(items).toHaveLength(5);
    for (const l of items) {
      expect(l).toMatchObject({ app: APP, stream: "stdout" });
      // `$(date +%s)` ran in the container's shell: compose got `$$`, the shell a `$`.
      expect(l.line).toMatch(/^tick \d{10}$/);
      expect(Date.parse(l.at)).toBeGreaterThan(Date.now() - 120_000);
    }
    // Oldest first, and the newest is recent.
    expect([...items].sort((a, b) => a.at.localeCompare(b.at))).toEqual(items);
    expect(Date.now() - Date.parse(items.at(-1)!.at)).toBeLessThan(5_000);

    // Without tail: up to 200, here every line so far (the app has printed fewer).
    await new Promise((r) => setTimeout(r, 1000));
    const dflt = (await c.query<{ items: Line[] }>("apps.logs", { name: APP })).body.result!.data.items;
    expect(dflt.length).toBeGreaterThan(items.length);
    expect(dflt.length).toBeLessThanOrEqual(200);
    expect(dflt.slice(0, items.length)).toEqual((await c.query<{ items: Line[] }>("apps.logs", { name: APP, tail: 200 })).body.result!.data.items.slice(0, items.length));
  });

  it("checks its input strictly", async () => {
    for (const tail of [0, 5001, 1.5, "10"]) {
      const r = await c.query("apps.logs", { name: APP, tail });
      expect(r.status, `tail ${JSON.stringify(tail)}`).toBe(400);
      expect(r.body.error!.data.fields).toHaveProperty("tail");
    }
    expect((await c.query("apps.logs", { name: "../etc" })).status).toBe(400);
    expect((await c.query("apps.logs", { name: APP, path: "/var/log" })).status).toBe(400);
  });

  it("answers 404 for an unknown app, on the query and on the stream", async () => {
    const r = await c.query("apps.logs", { name: "no-such-app" });
    expect(r.status).toBe(404);
    expect(r.body.error!.data.code).toBe("NOT_FOUND");
    const sse = await openSse(followUrl({ name: "no-such-app" }), c.authHeaders);
    try {
      const err = await errorEvent(sse);
      expect(err.data).toMatchObject({ code: "NOT_FOUND", httpStatus: 404 });
    } finally {
      sse.close();
    }
  });
});

describe("apps.logFollow", () => {
  it("streams new lines live and stops the agent's follow when the viewer goes away", async () => {
    const before = agent.find("log follow started").length;
    const asked = new Date().toISOString();
    const sse = await openSse(followUrl({ name: APP, tail: 3 }), c.authHeaders);
    let requestId: unknown;
    try {
      await sse.next((e) => e.event === "connected");
      // First the last 3 lines as the agent found them when it started following (the oldest of
      // them written before the stream was asked for; the ticker may add one meanwhile), then live ones.
      const first = await batches(sse);
      const tail = first.lines.slice(0, 3);
      expect(tail).toHaveLength(3);
      expect(tail[0].at < asked).toBe(true);
      const started = await waitFor("the agent's log follow", () => agent.find("log follow started").slice(before).find((e) => e.app === APP));
      requestId = started.requestId;
      expect(started.tail).toBe(3);
      expect((await health()).logFollows).toBe(1);

      // Lines written after the stream opened arrive on it, in order, while it stays open.
      const opened = Date.now();
      const live: Line[] = [];
      while (live.filter((l) => Date.parse(l.at) > opened).length < 5) live.push(...(await batches(sse)).lines);
      expect(live.every((l) => l.app === APP && /^tick \d+$/.test(l.line))).toBe(true);
      expect([...live].sort((a, b) => a.at.localeCompare(b.at))).toEqual(live);
    } finally {
      sse.close();
    }
    const ended = await agent.waitForLog("log follow ended", (e) => e.requestId === requestId);
    expect(ended.reason).toBe("stopped by the console");
    await waitFor("no follow left on the agent", async () => (await health()).logFollows === 0, 5_000);
  });

  it("holds no follower after many viewers come and go", async () => {
    const viewers = await Promise.all(Array.from({ length: 8 }, () => openSse(followUrl({ name: APP, tail: 1 }), c.authHeaders)));
    await Promise.all(viewers.map((v) => batches(v)));
    expect((await health()).logFollows).toBe(8);
    for (const v of viewers) v.close();
    await waitFor("every follow stopped", async () => (await health()).logFollows === 0, 10_000);
  });

  it("releases the follow of a viewer that leaves after the console has collected garbage", async () => {
    // Remix hands loaders a copy of the Request whose abort signal is linked to the connection only
    // through a WeakRef: after a GC a closed stream went unnoticed and its follow ran on forever.
    const sse = await openSse(followUrl({ name: APP, tail: 1 }), c.authHeaders);
    await batches(sse);
    expect((await health()).logFollows).toBe(1);
    // Churn the console's heap (large tails allocate plenty) so its young generation is collected.
    for (let i = 0; i < 30; i++) await c.query("apps.logs", { name: APP, tail: 5000 });
    await batches(sse);
    sse.close();
    await waitFor("the follow stopped", async () => (await health()).logFollows === 0, 10_000);
  });

  it("ends the stream with 'host offline' when the agent's socket drops, and the agent stops reading", async () => {
    const sse = await openSse(followUrl({ name: APP, tail: 0 }), c.authHeaders);
    try {
      await batches(sse);
      expect((await health()).logFollows).toBe(1);
      const connects = agent.find("connected").length;
      relay.cut();
      const err = await errorEvent(sse);
      expect(err.data.code).toBe("PRECONDITION_FAILED");
      expect(err.message).toMatch(/^host offline/);
      const ended = await agent.waitForLog("log follow ended", (e) => e.reason === "disconnected from the console");
      expect(ended.app).toBe(APP);
      expect((await health()).logFollows).toBe(0);

      // While the host is away: a clear error for the query and for a new stream.
      await waitFor("host offline", async () => (await c.query<{ online: boolean }>("hosts.get", { id: hostId })).body.result?.data.online === false, 10_000);
      const q = await c.query("apps.logs", { name: APP });
      expect(q.status).toBe(412);
      expect(q.body.error!.data.code).toBe("PRECONDITION_FAILED");
      expect(q.body.error!.message).toMatch(/^host offline: .* is not connected/);
      const again = await openSse(followUrl({ name: APP }), c.authHeaders);
      try {
        expect((await errorEvent(again)).message).toMatch(/^host offline/);
      } finally {
        again.close();
      }

      relay.resume();
      await waitFor("agent reconnected", () => agent.find("connected").length > connects, 30_000);
      await waitFor("logs again", async () => (await c.query("apps.logs", { name: APP, tail: 1 })).status === 200, 20_000, 200);
    } finally {
      sse.close();
    }
  });
});

describe("what the hub accepts", () => {
  let fake: FakeAgent;
  const FAKE_APP = "elsewhere";

  beforeAll(async () => {
    const e = (await c.mutate<{ token: string }>("hosts.createEnrollment", {})).body.result!.data;
    fake = new FakeAgent();
    await fake.connect(`${c.url.replace("http", "ws")}/agent`, { token: e.token });
    const r = await c.mutate("apps.create", { name: FAKE_APP, repository: "https://github.com/example/x.git", startCommand: "run", port: 4321, hostId: fake.hostId });
    expect(r.status).toBe(200);
  });
  afterAll(() => fake?.ws.terminate());

  type LogsRequest = Extract<ConsoleMessage, { type: "logs" }>;
  const nextRequest = (from: number) =>
    waitFor("a logs request at the fake agent", () => fake.received.slice(from).find((m): m is LogsRequest => m.type === "logs"), 10_000);

  it("asks only the host that runs the app, and takes its lines only about that app", async () => {
    const from = fake.received.length;
    const answer = c.query<{ items: Line[] }>("apps.logs", { name: FAKE_APP, tail: 10 });
    const req = await nextRequest(from);
    expect(req).toMatchObject({ app: FAKE_APP, tail: 10 });
    expect(req.follow).toBeUndefined();
    const at = new Date().toISOString();
    // Another host's app and a made-up request id are ignored; the answer is this request's own lines.
    fake.send({ type: "log", requestId: "0000-not-a-request", lines: [{ app: FAKE_APP, stream: "stdout", line: "forged", at }], done: true });
    fake.send({
      type: "log",
      requestId: req.requestId,
      lines: [
        { app: APP, stream: "stdout", line: "not yours", at },
        { app: FAKE_APP, stream: "stderr", line: "mine", at },
      ],
      done: true,
    });
    const r = await answer;
    expect(r.status).toBe(200);
    expect(r.body.result!.data.items).toEqual([{ app: FAKE_APP, stream: "stderr", line: "mine", at }]);
    expect(c.output()).toMatch(/agent report refused.*log lines for ticker in an answer about elsewhere/);
  });

  it("passes the agent's error on clearly", async () => {
    const from = fake.received.length;
    const answer = c.query("apps.logs", { name: FAKE_APP });
    const req = await nextRequest(from);
    fake.send({ type: "log", requestId: req.requestId, lines: [], done: true, error: "app elsewhere has no container" });
    const r = await answer;
    expect(r.status).toBe(412);
    expect(r.body.error!.message).toBe("the agent could not read the logs of elsewhere: app elsewhere has no container");
  });

  it("gives up on a host that does not answer (504)", async () => {
    const t0 = Date.now();
    const r = await c.query("apps.logs", { name: FAKE_APP });
    expect(r.status).toBe(504);
    expect(r.body.error!.data.code).toBe("GATEWAY_TIMEOUT");
    expect(r.body.error!.message).toMatch(/did not answer within 10 s/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(9_500);
  }, 30_000);

  it("relays a follow's lines and sends logs-stop for exactly that follow when its viewer leaves", async () => {
    const from = fake.received.length;
    const sse = await openSse(followUrl({ name: FAKE_APP, tail: 0 }), c.authHeaders);
    const req = await nextRequest(from);
    expect(req).toMatchObject({ app: FAKE_APP, tail: 0, follow: true });
    const at = new Date().toISOString();
    fake.send({ type: "log", requestId: req.requestId, lines: [1, 2, 3].map((n) => ({ app: FAKE_APP, stream: "stdout", line: `l${n}`, at })) });
    expect((await batches(sse)).lines.map((l) => l.line)).toEqual(["l1", "l2", "l3"]);
    sse.close();
    const stop = await waitFor("logs-stop", () => fake.received.slice(from).find((m) => m.type === "logs-stop"), 10_000);
    expect(stop).toEqual({ type: "logs-stop", requestId: req.requestId });
  });

  it("ends a follow whose host ended it, and refuses an offline host with a clear error", async () => {
    const from = fake.received.length;
    const sse = await openSse(followUrl({ name: FAKE_APP }), c.authHeaders);
    try {
      const req = await nextRequest(from);
      fake.send({ type: "log", requestId: req.requestId, lines: [], done: true });
      expect((await batches(sse)).ended).toMatch(/log stream ended/);
    } finally {
      sse.close();
    }

    fake.ws.close();
    await waitFor("fake host offline", async () => (await c.query<{ online: boolean }>("hosts.get", { id: fake.hostId })).body.result?.data.online === false, 10_000);
    const r = await c.query("apps.logs", { name: FAKE_APP });
    expect(r.status).toBe(412);
    expect(r.body.error!.message).toMatch(/^host offline: /);
  });
});
