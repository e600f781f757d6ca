// apps.apply against the real console: created once, the same spec again changes nothing and
// queues nothing (no command row, no audit row), a changed field queues exactly one update, and
// bad input is refused per field like apps.create. The host is enrolled but offline, so queued
// commands wait in the outbox where the test reads them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConsole, type RunningConsole } from "../support/console";

let c: RunningConsole;
const HOST = "host-apply";
const spec = { name: "declared", repository: "https://github.com/example/app.git", startCommand: "python app.py --port $PORT", port: 7870, hostId: HOST, gpu: { mode: "none" } };
type Applied = { app: { name: string; port: number; status: string }; created: boolean; changed: string[]; commandId: string | null };

const count = async (sql: string, args: (string | number)[] = []) => Number((await c.db().execute({ sql, args })).rows[0].n);
const commandsOf = (name: string) => count("SELECT count(*) AS n FROM commands WHERE app_name = ?", [name]);

beforeAll(async () => {
  c = await startConsole();
  await c.db().execute({ sql: "INSERT INTO hosts (id, name, online, facts) VALUES (?, 'gpu-apply', 0, '{}')", args: [HOST] });
});
afterAll(async () => {
  await c?.dispose();
});

describe("apps.apply", () => {
  it("creates a new app and queues its provision", async () => {
    const r = await c.mutate<Applied>("apps.apply", spec);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const out = r.body.result!.data;
    expect(out.created).toBe(true);
    expect(out.app).toMatchObject({ name: "declared", port: 7870, status: "STARTING" });
    const cmd = (await c.db().execute("SELECT id, action FROM commands WHERE app_name = 'declared'")).rows;
    expect(cmd.map((x) => [x.id, x.action])).toEqual([[out.commandId, "provision"]]);
  });

  it("changes nothing and queues nothing for the same spec again", async () => {
    const commands = await commandsOf("declared");
    const audit = await count("SELECT count(*) AS n FROM audit_log");
    const events = await count("SELECT count(*) AS n FROM app_events");
    for (let i = 0; i < 2; i++) {
      const r = await c.mutate<Applied>("apps.apply", { ...spec, gpu: { mode: "none" } });
      expect(r.status).toBe(200);
      expect(r.body.result!.data).toMatchObject({ created: false, changed: [], commandId: null });
    }
    expect(await commandsOf("declared")).toBe(commands);
    expect(await count("SELECT count(*) AS n FROM audit_log")).toBe(audit);
    expect(await count("SELECT count(*) AS n FROM app_events")).toBe(events);
  });

  it("queues exactly one update for a changed field, and says which", async () => {
    const commands = await commandsOf("declared");
    const r = await c.mutate<Applied>("apps.apply", { ...spec, port: 7871 });
    expect(r.status).toBe(200);
    const out = r.body.result!.data;
    expect(out).toMatchObject({ created: false, changed: ["port"] });
    expect(out.app.port).toBe(7871);
    expect(await commandsOf("declared")).toBe(commands + 1);
    const [cmd] = (await c.db().execute("SELECT id, action FROM commands WHERE app_name = 'declared' ORDER BY issued_at DESC LIMIT 1")).rows;
    expect([cmd.id, cmd.action]).toEqual([out.commandId, "update"]);
    // Applying the changed spec again is a no-op once more.
    expect((await c.mutate<Applied>("apps.apply", { ...spec, port: 7871 })).body.result!.data.changed).toEqual([]);
    expect(await commandsOf("declared")).toBe(commands + 1);
  });

  it("names every bad field, like apps.create, and creates nothing", async () => {
    const apps = await count("SELECT count(*) AS n FROM apps");
    const bad = await c.mutate("apps.apply", { ...spec, name: "new-one", port: "7860", startCommand: "", repository: "ext::sh -c touch /tmp/x" });
    expect(bad.status).toBe(400);
    // The error names the procedure the caller used, not the router key it lives under.
    expect(bad.body.error!.data).toMatchObject({ path: "apps.apply" });
    expect(Object.keys(bad.body.error!.data.fields ?? {}).sort()).toEqual(["port", "repository", "startCommand"]);
    const badExisting = await c.mutate("apps.apply", { ...spec, port: 80, extra: 1 });
    expect(badExisting.status).toBe(400);
    expect(Object.keys(badExisting.body.error!.data.fields ?? {}).sort()).toEqual(["extra", "port"]);
    expect(await count("SELECT count(*) AS n FROM apps")).toBe(apps);
  });

  it("refuses to move an existing app to another repository or host", async () => {
    const commands = await commandsOf("declared");
    const r = await c.mutate("apps.apply", { ...spec, port: 7871, repository: "https://github.com/example/other.git", hostId: "elsewhere" });
    expect(r.status).toBe(400);
    expect(Object.keys(r.body.error!.data.fields ?? {}).sort()).toEqual(["hostId", "repository"]);
    expect(await commandsOf("declared")).toBe(commands);
  });

  it("is for operators: a viewer token is refused and changes nothing", async () => {
    const tok = await c.mutate<{ token: string }>("tokens.create", { name: "ci-viewer", role: "viewer" });
    const r = await c.mutate("apps.apply", { ...spec, port: 7999 }, { authorization: `Bearer ${tok.body.result!.data.token}` });
    expect(r.status).toBe(403);
    expect(await count("SELECT count(*) AS n FROM apps WHERE port = 7999")).toBe(0);
  });
});
