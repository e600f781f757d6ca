// The console over HTTP as curl sees it: seeded marketplace, apps.create and its refusals.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startConsole, type RunningConsole } from "../support/console";

let c: RunningConsole;
const good = { name: "webui", repository: "https://github.com/example/webui.git", startCommand: "python main.py --port ${PORT}", port: 7860 };

async function count(table: string): Promise<number> {
  const r = await c.db().execute(`SELECT count(*) AS n FROM ${table}`);
  return Number(r.rows[0].n);
}

beforeAll(async () => {
  c = await startConsole();
});
afterAll(async () => {
  await c?.dispose();
});

describe("console API", () => {
  it("answers /healthz with the database checked", async () => {
    const r = await fetch(`${c.url}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ ok: true, database: "ok" });
  });

  it("compresses pages and API reads, never the small answers of API writes", async () => {
    const { request } = await import("node:http");
    // Node's fetch decodes bodies by itself: read the raw headers with node:http.
    const head = (method: string, path: string, body?: string) =>
      new Promise<{ status: number; bytes: number; headers: Record<string, string | string[] | undefined> }>((ok, fail) => {
        const r = request(`${c.url}${path}`, { method, headers: { ...c.authHeaders, "accept-encoding": "gzip", "content-type": "application/json" } }, (res) => {
          let bytes = 0;
          res.on("data", (d: Buffer) => (bytes += d.length));
          res.on("end", () => ok({ status: res.statusCode ?? 0, bytes, headers: res.headers }));
        });
        r.on("error", fail);
        r.end(body);
      });
    const read = await head("GET", "/api/trpc/templates.list");
    expect([read.status, read.headers["content-encoding"]]).toEqual([200, "gzip"]);
    // An answer over the compression threshold (1 KB), still sent as it is, with the security headers.
    const write = await head("POST", "/api/trpc/apps.create", JSON.stringify({ ...good, name: "uncompressed-answer", port: 7999, env: { NOTE: "x".repeat(2000) } }));
    expect(write.status).toBe(200);
    expect(write.bytes).toBeGreaterThan(1024);
    expect(write.headers["content-encoding"]).toBeUndefined();
    expect(write.headers["content-security-policy"]).toBeDefined();
  });

  it("lists the seeded marketplace, Stable Diffusion first", async () => {
    const r = await c.query<{ items: { slug: string; repository: string; defaultPort: number; gpu: { mode: string } }[] }>("templates.list");
    expect(r.status).toBe(200);
    const items = r.body.result!.data.items;
    expect(items.length).toBeGreaterThanOrEqual(5);
    expect(items[0].slug).toBe("stable-diffusion-webui");
    expect(items[0].repository).toMatch(/^https:\/\/github\.com\//);
    for (const t of items) expect(t.defaultPort).toBeGreaterThanOrEqual(1024);
    const one = await c.query<{ name: string }>("templates.get", { slug: "comfyui" });
    expect(one.body.result!.data.name).toBe("ComfyUI");
  });

  it("creates an app, keyed by name, waiting for a host", async () => {
    const r = await c.mutate<Record<string, unknown>>("apps.create", good);
    expect(r.status).toBe(200);
    expect(r.body.result!.data).toMatchObject({ name: "webui", port: 7860, status: "STOPPED", phase: "waiting for a host", hostId: null });
    const got = await c.query<Record<string, unknown>>("apps.get", { name: "webui" });
    expect(got.body.result!.data).toMatchObject({ name: "webui", repository: good.repository, startCommand: good.startCommand });
    expect(Date.parse(String(got.body.result!.data.statusSince))).toBeGreaterThan(Date.now() - 60_000);
    const list = await c.query<{ items: { name: string }[] }>("apps.list");
    expect(list.body.result!.data.items.map((a) => a.name)).toContain("webui");
    const audit = await c.db().execute("SELECT action, target, outcome FROM audit_log WHERE action = 'app.create'");
    expect(audit.rows.map((r) => [r.action, r.target, r.outcome])).toContainEqual(["app.create", "webui", "ok"]);
    // What was not given is SQL NULL in the row (not the JSON text "null").
    const row = await c.db().execute("SELECT typeof(gpu) AS gpu, typeof(host_id) AS host, typeof(template_id) AS tpl FROM apps WHERE name = 'webui'");
    expect({ ...row.rows[0] }).toEqual({ gpu: "null", host: "null", tpl: "null" });
  });

  it("answers CONFLICT for a taken name and for a port taken on the same host", async () => {
    const before = await count("apps");
    const same = await c.mutate("apps.create", { ...good, port: 7861 });
    expect(same.status).toBe(409);
    expect(same.body.error!.data.fields).toHaveProperty("name");
    const port = await c.mutate("apps.create", { ...good, name: "other" });
    expect(port.status).toBe(409);
    expect(port.body.error!.data.fields).toHaveProperty("port");
    expect(await count("apps")).toBe(before);
  });

  it("fills what the operator leaves out from a template", async () => {
    const r = await c.mutate<Record<string, unknown>>("apps.create", { name: "sd", templateId: "stable-diffusion-webui", port: 7870 });
    expect(r.status).toBe(200);
    expect(r.body.result!.data).toMatchObject({
      name: "sd",
      templateId: "stable-diffusion-webui",
      repository: "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git",
      port: 7870,
      gpu: { mode: "required" },
    });
  });

  it("answers NOT_FOUND for an unknown template, host or app", async () => {
    const before = await count("apps");
    const tpl = await c.mutate("apps.create", { ...good, name: "t1", port: 7900, templateId: "no-such-template" });
    expect(tpl.status).toBe(404);
    expect(tpl.body.error!.data.fields).toHaveProperty("templateId");
    const host = await c.mutate("apps.create", { ...good, name: "t2", port: 7901, hostId: "nohost" });
    expect(host.status).toBe(404);
    expect(host.body.error!.data.fields).toHaveProperty("hostId");
    const app = await c.query("apps.get", { name: "ghost" });
    expect(app.status).toBe(404);
    expect(await count("apps")).toBe(before);
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ["path traversal name", { name: "../x" }, "name"],
    ["shell name", { name: "a;b" }, "name"],
    ["option name", { name: "-rf" }, "name"],
    ["upper-case name", { name: "WebUI" }, "name"],
    ["64-char name", { name: "a".repeat(64) }, "name"],
    ["padded name (no trimming)", { name: " webui2" }, "name"],
    ["ext:: transport", { repository: "ext::sh -c touch% /tmp/pwned" }, "repository"],
    ["file URL", { repository: "file:///etc/passwd" }, "repository"],
    ["upload-pack option", { repository: "--upload-pack=touch /tmp/pwned" }, "repository"],
    ["credentials in URL", { repository: "https://user:pw@github.com/a/b.git" }, "repository"],
    ["whitespace in URL", { repository: "https://github.com/a/b.git " }, "repository"],
    ["plain http without the lab switch", { repository: "http://github.com/a/b.git" }, "repository"],
    ["loopback without the lab switch", { repository: "https://127.0.0.1/a.git" }, "repository"],
    ["port 0", { port: 0 }, "port"],
    ["port 80", { port: 80 }, "port"],
    ["port 65536", { port: 65536 }, "port"],
    ["port as string", { port: "7860; id" }, "port"],
    ["numeric string port (no coercion)", { port: "7862" }, "port"],
    ["newline in start command", { startCommand: "run\nrm -rf /" }, "startCommand"],
    ["escape in start command", { startCommand: "a\u001b[2J" }, "startCommand"],
    ["NUL in install command", { installCommand: "pip\u0000install" }, "installCommand"],
    ["option-like image", { image: "--privileged" }, "image"],
    ["unknown field", { privileged: true }, "privileged"],
  ];
  it.each(bad)("refuses %s with BAD_REQUEST naming the field, leaving no row", async (_label, patch, field) => {
    const before = await count("apps");
    const r = await c.mutate("apps.create", { ...good, name: "fresh", port: 7950, ...patch });
    expect(r.status).toBe(400);
    expect(r.body.error!.data.code).toBe("BAD_REQUEST");
    expect(Object.keys(r.body.error!.data.fields ?? {})).toContain(field);
    expect(r.body.error!.message).toContain(field);
    expect(await count("apps")).toBe(before);
    expect((await c.query("apps.get", { name: "fresh" })).status).toBe(404);
  });

  it("refuses a missing required field by name", async () => {
    const r = await c.mutate("apps.create", { name: "bare" });
    expect(r.status).toBe(400);
    expect(r.body.error!.data.fields).toMatchObject({ repository: "is required", startCommand: "is required", port: "is required" });
  });

  it("updates an app's start command and port", async () => {
    const r = await c.mutate<Record<string, unknown>>("apps.update", { name: "webui", startCommand: "python main.py --port 7990", port: 7990 });
    expect(r.status).toBe(200);
    expect(r.body.result!.data).toMatchObject({ startCommand: "python main.py --port 7990", port: 7990 });
    const clash = await c.mutate("apps.update", { name: "webui", port: 7870 });
    expect(clash.status).toBe(409);
    const missing = await c.mutate("apps.update", { name: "ghost", port: 7991 });
    expect(missing.status).toBe(404);
  });

  it("refuses lifecycle actions on an app still waiting for a host, and deinstalls its record", async () => {
    const start = await c.mutate("apps.start", { name: "sd" });
    expect(start.status).toBe(412);
    expect(start.body.error!.data.fields).toHaveProperty("name");
    const timeline = await c.query<{ items: { type: string; app: string }[] }>("apps.timeline", { name: "sd" });
    expect(timeline.body.result!.data.items[0]).toMatchObject({ type: "created", app: "sd" });
    const gone = await c.mutate<{ app: null }>("apps.deinstall", { name: "sd" });
    expect(gone.status).toBe(200);
    expect((await c.query("apps.get", { name: "sd" })).status).toBe(404);
    expect((await c.mutate("apps.stop", { name: "sd" })).status).toBe(404);
  });

  it("lists hosts as { items }", async () => {
    const r = await c.query<{ items: unknown[] }>("hosts.list");
    expect(r.status).toBe(200);
    expect(Array.isArray(r.body.result!.data.items)).toBe(true);
  });
});

describe("configuration", () => {
  it("admits http and loopback repositories only with DCC_ALLOW_INSECURE_GIT", async () => {
    const lab = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "on" } });
    try {
      const r = await lab.mutate("apps.create", { ...good, repository: "http://127.0.0.1:9/app.git" });
      expect(r.status).toBe(200);
      const meta = await lab.mutate("apps.create", { ...good, name: "meta", port: 7861, repository: "http://169.254.169.254/latest" });
      expect(meta.status).toBe(400);
    } finally {
      await lab.dispose();
    }
  });

  it("stops start-up naming the file and field of a broken template", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dcc-badtpl-"));
    try {
      await cp(join(ROOT, "templates/marketplace"), dir, { recursive: true });
      const broken = { slug: "broken", name: "Broken", summary: "x", repository: "https://github.com/a/b.git", startCommand: "run", defaultPort: 80 };
      await writeFile(join(dir, "99-broken.json"), JSON.stringify(broken));
      const r = spawnSync(process.execPath, [join(ROOT, "build/server.mjs")], {
        cwd: ROOT,
        env: { NODE_ENV: "production", PATH: process.env.PATH, PORT: "0", DCC_DATA_DIR: join(dir, "data"), DCC_LOCAL_AGENT: "0", DCC_TEMPLATES_DIR: dir },
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("99-broken.json");
      expect(r.stderr).toContain("defaultPort");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
