// Sign-in throttling keyed per address and per account + address (never per account alone): an
// anonymous flood of wrong passwords for `admin` from one address throttles that address with
// growing waits, while the admin still signs in from another one. The console runs behind a
// (simulated) trusted proxy, so X-Forwarded-For is the client address.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setCookies, startConsole, TEST_ADMIN_PASSWORD, type RunningConsole } from "../support/console";

let c: RunningConsole;
const ATTACKER = "203.0.113.66";
const ADMIN_AT = "198.51.100.7";

async function signInFrom(address: string, username: string, password: string): Promise<number> {
  const headers = { "x-forwarded-for": address };
  const page = await fetch(`${c.url}/login`, { headers, redirect: "manual" });
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  const cookie = Object.entries(setCookies(page)).find(([k]) => k.endsWith("dcc_csrf"));
  if (!token || !cookie) throw new Error(`no sign-in form (${page.status})`);
  const r = await fetch(`${c.url}/login`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/x-www-form-urlencoded", cookie: `${cookie[0]}=${cookie[1]}` },
    body: new URLSearchParams({ _csrf: token, username, password, next: "/" }),
    redirect: "manual",
  });
  await r.arrayBuffer();
  return r.status;
}

const lockedFor = async (key: string) => {
  const row = (await c.db().execute({ sql: "SELECT locked_until FROM sign_in_throttle WHERE key = ?", args: [key] })).rows[0];
  return row?.locked_until ? Date.parse(String(row.locked_until)) - Date.now() : 0;
};

beforeAll(async () => {
  c = await startConsole({ env: { DCC_TRUST_PROXY: "1" } });
});
afterAll(async () => {
  await c?.dispose();
});

describe("sign-in throttling", () => {
  it("does not let a flood of wrong passwords for admin from one address lock the admin out elsewhere", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push(await signInFrom(ATTACKER, "admin", `wrong-password-${i}`));
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    // The right password from the flooding address waits too…
    expect(await signInFrom(ATTACKER, "admin", TEST_ADMIN_PASSWORD)).toBe(429);
    // …but from an address that has not failed, the admin signs in.
    expect(await signInFrom(ADMIN_AT, "admin", TEST_ADMIN_PASSWORD)).toBe(302);
    const audit = (await c.db().execute("SELECT source_address, outcome FROM audit_log WHERE action = 'auth.sign_in' AND outcome = 'ok'")).rows;
    expect(audit.map((r) => r.source_address)).toEqual([ADMIN_AT]);
  });

  it("doubles the wait with each further failure", async () => {
    const key = `user:admin@${ATTACKER}`;
    const first = await lockedFor(key);
    expect(first).toBeGreaterThan(50_000);
    expect(first).toBeLessThanOrEqual(60_000);
    // The wait is over: one more wrong password waits twice as long.
    await c.db().execute({ sql: "UPDATE sign_in_throttle SET locked_until = ? WHERE key = ?", args: [new Date(Date.now() - 1000).toISOString(), key] });
    expect(await signInFrom(ATTACKER, "admin", "wrong-again-password")).toBe(401);
    const second = await lockedFor(key);
    expect(second).toBeGreaterThan(110_000);
    expect(second).toBeLessThanOrEqual(120_000);
  });

  it("throttles an address that sprays many user names, and only that address", async () => {
    const SPRAYER = "203.0.113.99";
    expect((await c.mutate("users.create", { username: "fresh", password: "fresh-user-password-1", role: "viewer" })).status).toBe(200);
    for (let i = 0; i < 20; i++) expect(await signInFrom(SPRAYER, `spray-${i}`, "password123456")).toBe(401);
    expect(await signInFrom(SPRAYER, "fresh", "fresh-user-password-1")).toBe(429);
    expect(await signInFrom("198.51.100.8", "fresh", "fresh-user-password-1")).toBe(302);
  });
});
