// Authorization matrix against the running console: every tRPC procedure the router has (read
// from appRouter._def.procedures, so new ones are covered without editing this file, as long as
// they are in MIN_ROLE) × every role, through API tokens and through signed-in browser sessions.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appRouter } from "../../app/trpc/root";
import { NO_AUTH, startConsole, type HttpSession, type RunningConsole, type TrpcReply } from "../support/console";

type Role = "viewer" | "operator" | "admin";
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** The contract: the least role each procedure needs. A procedure missing here fails the suite. */
const MIN_ROLE: Record<string, Role> = {
  "apps.list": "viewer",
  "apps.get": "viewer",
  "apps.timeline": "viewer",
  "apps.events": "viewer",
  "apps.logs": "viewer",
  "apps.vulnerabilities": "viewer",
  "apps.logFollow": "viewer",
  "apps.create": "operator",
  "apps.update": "operator",
  "apps.applySpec": "operator",
  "apps.webhook": "operator",
  "apps.webhookDelete": "operator",
  "apps.start": "operator",
  "apps.stop": "operator",
  "apps.restart": "operator",
  "apps.reinstall": "operator",
  "apps.deinstall": "operator",
  "apps.cancel": "operator",
  "apps.deploys": "viewer",
  "apps.rollback": "operator",
  "apps.suggestPort": "viewer",
  "apps.shareLinks": "operator",
  "apps.shareCreate": "operator",
  "apps.shareRevoke": "operator",
  "registries.list": "admin",
  "registries.set": "admin",
  "registries.delete": "admin",
  "templates.list": "viewer",
  "templates.get": "viewer",
  "templates.promote": "operator",
  "hosts.list": "viewer",
  "hosts.get": "viewer",
  "hosts.ping": "operator",
  "hosts.update": "admin",
  "hosts.createEnrollment": "admin",
  "hosts.revoke": "admin",
  "hosts.orphans": "admin",
  "hosts.scanOrphans": "admin",
  "hosts.cleanup": "admin",
  "hosts.prepull": "admin",
  "audit.list": "admin",
  "auth.me": "viewer",
  "auth.signOut": "viewer",
  "auth.signOutEverywhere": "viewer",
  "tokens.list": "admin",
  "tokens.create": "admin",
  "tokens.revoke": "admin",
  "notifications.list": "admin",
  "notifications.create": "admin",
  "notifications.delete": "admin",
  "notifications.test": "admin",
  "users.list": "admin",
  "users.create": "admin",
  "users.update": "admin",
  "users.remove": "admin",
};

const procedures = Object.entries(appRouter._def.procedures as unknown as Record<string, { _def: { type: "query" | "mutation" | "subscription" } }>).map(
  ([path, p]) => ({ path, type: p._def.type }),
);

// An input every procedure refuses (unknown key), so an authorized call changes nothing.
const PROBE = { __probe: "authz-matrix" };

let c: RunningConsole;
const tokens = {} as Record<Role, string>;
const sessions = {} as Record<Role, HttpSession>;
const PASSWORD = "matrix-password-0123456789";

async function call(path: string, type: string, headers: Record<string, string>, session?: HttpSession): Promise<number> {
  if (type === "subscription") {
    const ac = new AbortController();
    const auth = session ? { cookie: session.cookie } : headers;
    const r = await fetch(`${c.url}/api/trpc/${path}?input=${encodeURIComponent(JSON.stringify(PROBE))}`, {
      headers: { accept: "text/event-stream", ...auth },
      signal: ac.signal,
    });
    ac.abort();
    return r.status;
  }
  const fn = type === "query" ? "query" : "mutate";
  const r: TrpcReply = session ? await session[fn](path, PROBE, headers) : await c[fn](path, PROBE, headers);
  return r.status;
}

beforeAll(async () => {
  c = await startConsole();
  for (const role of ["viewer", "operator", "admin"] as Role[]) {
    const t = await c.mutate<{ token: string }>("tokens.create", { name: `matrix-${role}`, role });
    expect(t.status).toBe(200);
    tokens[role] = t.body.result!.data.token;
    expect((await c.mutate("users.create", { username: `m-${role}`, password: PASSWORD, role })).status).toBe(200);
    sessions[role] = await c.signIn(`m-${role}`, PASSWORD);
  }
});
afterAll(async () => {
  await c?.dispose();
});

describe("authorization matrix", () => {
  it("knows the minimum role of every procedure the router has", () => {
    expect(procedures.length).toBeGreaterThanOrEqual(25);
    const missing = procedures.map((p) => p.path).filter((p) => !(p in MIN_ROLE));
    expect(missing, "procedures without an expected role in MIN_ROLE").toEqual([]);
  });

  it("refuses every procedure without credentials (401)", async () => {
    const got = Object.fromEntries(await Promise.all(procedures.map(async (p) => [p.path, await call(p.path, p.type, NO_AUTH)] as const)));
    expect(got).toEqual(Object.fromEntries(procedures.map((p) => [p.path, 401])));
  });

  it("refuses a wrong or unknown bearer token (401) without falling back to anything", async () => {
    for (const bad of ["Bearer dcc_" + "A".repeat(43), "Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", `Bearer ${tokens.admin}x`]) {
      expect((await c.query("apps.list", undefined, { authorization: bad })).status).toBe(401);
      expect((await c.mutate("apps.create", { name: "nope", repository: "https://github.com/a/b.git", startCommand: "x", port: 9000 }, { authorization: bad })).status).toBe(401);
    }
  });

  for (const via of ["token", "session"] as const) {
    for (const role of ["viewer", "operator", "admin"] as Role[]) {
      it(`${role} ${via}: allowed at or above its role, 403 above it`, async () => {
        const results = await Promise.all(
          procedures.map(async (p) => {
            const status =
              via === "token" ? await call(p.path, p.type, { authorization: `Bearer ${tokens[role]}` }) : await call(p.path, p.type, {}, sessions[role]);
            const allowed = RANK[role] >= RANK[MIN_ROLE[p.path] ?? "admin"];
            return [p.path, allowed ? (status === 401 || status === 403 ? `refused ${status}` : "allowed") : status === 403 ? "forbidden" : `got ${status}`] as const;
          }),
        );
        const expected = procedures.map((p) => [p.path, RANK[role] >= RANK[MIN_ROLE[p.path] ?? "admin"] ? "allowed" : "forbidden"] as const);
        expect(Object.fromEntries(results)).toEqual(Object.fromEntries(expected));
      });
    }
  }

  it("the standing DCC_ADMIN_TOKEN is an admin, audited as token:admin-env", async () => {
    const r = await c.mutate("apps.create", { name: "env-made", repository: "https://github.com/a/b.git", startCommand: "run", port: 9100 });
    expect(r.status).toBe(200);
    const row = await c.db().execute("SELECT actor FROM audit_log WHERE action = 'app.create' AND target = 'env-made'");
    expect(row.rows.map((x) => x.actor)).toEqual(["token:admin-env"]);
  });
});

describe("a token does only its own role's work", () => {
  const app = (name: string, port: number) => ({ name, repository: "https://github.com/example/app.git", startCommand: "run", port });
  const count = async (sql: string) => Number((await c.db().execute(sql)).rows[0].n);

  it("a viewer token reads but cannot create, start or remove apps", async () => {
    const auth = { authorization: `Bearer ${tokens.viewer}` };
    expect((await c.query("apps.list", undefined, auth)).status).toBe(200);
    const r = await c.mutate("apps.create", app("viewer-made", 9001), auth);
    expect(r.status).toBe(403);
    expect(r.body.error!.data.code).toBe("FORBIDDEN");
    expect(await count("SELECT count(*) AS n FROM apps WHERE name = 'viewer-made'")).toBe(0);
    expect((await c.mutate("apps.deinstall", { name: "env-made" }, auth)).status).toBe(403);
    expect(await count("SELECT count(*) AS n FROM apps WHERE name = 'env-made'")).toBe(1);
    // The refusal itself is on record.
    const denied = await c.db().execute("SELECT actor, outcome FROM audit_log WHERE action = 'apps.create' AND outcome = 'denied'");
    expect(denied.rows.length).toBeGreaterThanOrEqual(1);
    // … under the name the caller used (apps.apply lives under another router key).
    const applied = await c.mutate("apps.apply", app("viewer-applied", 9002), auth);
    expect([applied.status, applied.body.error!.data.path]).toEqual([403, "apps.apply"]);
    expect(await count("SELECT count(*) AS n FROM audit_log WHERE action = 'apps.apply' AND outcome = 'denied'")).toBeGreaterThanOrEqual(1);
    expect(await count("SELECT count(*) AS n FROM audit_log WHERE action = 'apps.applySpec'")).toBe(0);
  });

  it("an operator token manages apps but cannot mint tokens, add users or enrol hosts", async () => {
    const auth = { authorization: `Bearer ${tokens.operator}` };
    const made = await c.mutate<{ name: string }>("apps.create", app("operator-made", 9002), auth);
    expect(made.status).toBe(200);
    // A forced removal (the record goes without the host) is an admin's call.
    const forced = await c.mutate("apps.deinstall", { name: "operator-made", force: true }, auth);
    expect(forced.status).toBe(403);
    expect(forced.body.error!.data.fields).toHaveProperty("force");
    expect(await count("SELECT count(*) AS n FROM apps WHERE name = 'operator-made'")).toBe(1);
    const actor = await c.db().execute("SELECT actor FROM audit_log WHERE action = 'app.create' AND target = 'operator-made'");
    expect(String(actor.rows[0].actor)).toMatch(/^token:tok_[0-9a-f]{16}$/);

    const before = await count("SELECT count(*) AS n FROM api_tokens");
    expect((await c.mutate("tokens.create", { name: "escalate", role: "admin" }, auth)).status).toBe(403);
    expect(await count("SELECT count(*) AS n FROM api_tokens")).toBe(before);
    expect((await c.mutate("users.create", { username: "sneaky", password: PASSWORD, role: "admin" }, auth)).status).toBe(403);
    expect(await count("SELECT count(*) AS n FROM users WHERE username = 'sneaky'")).toBe(0);
    expect((await c.mutate("hosts.createEnrollment", {}, auth)).status).toBe(403);
    expect((await c.query("audit.list", undefined, auth)).status).toBe(403);
  });

  it("an operator session cannot change its own role", async () => {
    const r = await sessions.operator.mutate("users.update", { username: "m-operator", role: "admin" });
    expect(r.status).toBe(403);
    expect((await c.db().execute("SELECT role FROM users WHERE username = 'm-operator'")).rows[0].role).toBe("operator");
  });
});

describe("revocation takes effect at once", () => {
  it("a revoked token is refused on its very next request", async () => {
    const made = await c.mutate<{ token: string; item: { id: string } }>("tokens.create", { name: "short-lived", role: "operator" });
    const auth = { authorization: `Bearer ${made.body.result!.data.token}` };
    expect((await c.query("apps.list", undefined, auth)).status).toBe(200);
    expect((await c.mutate("tokens.revoke", { id: made.body.result!.data.item.id })).status).toBe(200);
    expect((await c.query("apps.list", undefined, auth)).status).toBe(401);
    const listed = await c.query<{ items: { id: string; revokedAt: string | null; active: boolean }[] }>("tokens.list");
    expect(listed.body.result!.data.items.find((t) => t.id === made.body.result!.data.item.id)).toMatchObject({ active: false });
  });

  it("an expired token is refused", async () => {
    const made = await c.mutate<{ token: string }>("tokens.create", { name: "expiring", role: "viewer", expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect(made.status).toBe(200);
    const auth = { authorization: `Bearer ${made.body.result!.data.token}` };
    expect((await c.query("apps.list", undefined, auth)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1700));
    expect((await c.query("apps.list", undefined, auth)).status).toBe(401);
  });

  it("a signed-out session is refused on its very next request", async () => {
    const s = await c.signIn("m-viewer", PASSWORD);
    expect((await s.query("apps.list")).status).toBe(200);
    expect((await s.mutate("auth.signOut", {})).status).toBe(200);
    expect((await s.query("apps.list")).status).toBe(401);
    expect((await s.query("auth.me")).status).toBe(401);
  });

  it("sign out everywhere ends every session of that user, and only theirs", async () => {
    const a = await c.signIn("m-operator", PASSWORD);
    const b = await c.signIn("m-operator", PASSWORD);
    const other = await c.signIn("m-viewer", PASSWORD);
    expect((await b.query("apps.list")).status).toBe(200);
    const r = await a.mutate<{ ended: number }>("auth.signOutEverywhere", {});
    expect(r.status).toBe(200);
    expect(r.body.result!.data.ended).toBeGreaterThanOrEqual(2);
    expect((await a.query("apps.list")).status).toBe(401);
    expect((await b.query("apps.list")).status).toBe(401);
    expect((await other.query("apps.list")).status).toBe(200);
    sessions.operator = await c.signIn("m-operator", PASSWORD);
  });

  it("disabling a user or setting a new password ends their sessions", async () => {
    expect((await c.mutate("users.create", { username: "temp", password: PASSWORD, role: "operator" })).status).toBe(200);
    const s = await c.signIn("temp", PASSWORD);
    expect((await c.mutate("users.update", { username: "temp", password: "another-password-987654" })).status).toBe(200);
    expect((await s.query("apps.list")).status).toBe(401);
    const s2 = await c.signIn("temp", "another-password-987654");
    expect((await c.mutate("users.update", { username: "temp", disabled: true })).status).toBe(200);
    expect((await s2.query("apps.list")).status).toBe(401);
    await expect(c.signIn("temp", "another-password-987654")).rejects.toThrow(/401/);
  });

  it("the last active admin cannot be demoted, disabled or removed", async () => {
    // m-admin and the env admin exist: demote one, then the other is the last.
    expect((await c.mutate("users.update", { username: "m-admin", role: "operator" })).status).toBe(200);
    const r = await c.mutate("users.update", { username: "admin", role: "viewer" });
    expect(r.status).toBe(412);
    expect((await c.mutate("users.remove", { username: "admin" })).status).toBe(412);
    expect((await c.mutate("users.update", { username: "admin", disabled: true })).status).toBe(412);
    expect((await c.mutate("users.update", { username: "m-admin", role: "admin" })).status).toBe(200);
  });
});
