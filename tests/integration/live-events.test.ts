// apps.events over real HTTP: pushed at once, resumed by last-event id, carried across processes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConsole, type RunningConsole } from "../support/console";
import { openSse } from "../support/sse";

let c: RunningConsole;
const app = (name: string, port: number) => ({ name, repository: "https://github.com/example/x.git", startCommand: "run", port });

beforeAll(async () => {
  c = await startConsole();
});
afterAll(async () => {
  await c?.dispose();
});

describe("apps.events", () => {
  it("pushes a change made in this process as { id, type, app, ...fields }", async () => {
    const sse = await openSse(`${c.url}/api/trpc/apps.events`, c.authHeaders);
    try {
      await sse.next((e) => e.event === "connected");
      expect((await c.mutate("apps.create", app("live-one", 3001))).status).toBe(200);
      const e = await sse.next();
      const msg = JSON.parse(e.data);
      expect(msg).toMatchObject({ type: "created", app: "live-one", status: "STOPPED" });
      expect(e.id).toBe(String(msg.id));
    } finally {
      sse.close();
    }
  });

  it("resumes after a dropped stream without missing an event", async () => {
    const first = await openSse(`${c.url}/api/trpc/apps.events`, c.authHeaders);
    await first.next((e) => e.event === "connected");
    await c.mutate("apps.create", app("resume-a", 3002));
    const seen = await first.next();
    first.close();

    // Changes while the viewer is away.
    for (const [i, name] of ["resume-b", "resume-c", "resume-d"].entries()) await c.mutate("apps.create", app(name, 3003 + i));

    const again = await openSse(`${c.url}/api/trpc/apps.events`, { ...c.authHeaders, "last-event-id": seen.id! });
    try {
      const got: string[] = [];
      for (let i = 0; i < 3; i++) got.push(JSON.parse((await again.next()).data).app);
      expect(got).toEqual(["resume-b", "resume-c", "resume-d"]);
      await c.mutate("apps.create", app("resume-e", 3010));
      expect(JSON.parse((await again.next()).data).app).toBe("resume-e");
    } finally {
      again.close();
    }
  });

  it("filters by app", async () => {
    const sse = await openSse(`${c.url}/api/trpc/apps.events?input=${encodeURIComponent(JSON.stringify({ app: "only-me" }))}`, c.authHeaders);
    try {
      await sse.next((e) => e.event === "connected");
      await c.mutate("apps.create", app("not-me", 3020));
      await c.mutate("apps.create", app("only-me", 3021));
      expect(JSON.parse((await sse.next()).data).app).toBe("only-me");
    } finally {
      sse.close();
    }
  });

  it("carries changes written by another console process on the same database", async () => {
    const peer = await startConsole({ dataDir: c.dataDir });
    const sse = await openSse(`${c.url}/api/trpc/apps.events`, c.authHeaders);
    try {
      await sse.next((e) => e.event === "connected");
      expect((await peer.mutate("apps.create", app("from-peer", 3030))).status).toBe(200);
      const msg = JSON.parse((await sse.next((e) => e.event === "message" && e.data.includes("from-peer"))).data);
      expect(msg).toMatchObject({ type: "created", app: "from-peer" });
    } finally {
      sse.close();
      await peer.stop();
    }
  });
});
