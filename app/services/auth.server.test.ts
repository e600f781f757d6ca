import { mkdtemp, readFile, rm, stat, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { csrfToken, csrfTokenValid, hashPassword, loadSessionKey, lockDurationMs, secretsEqual, THROTTLE, verifyPassword } from "./auth.server";
import { NO_PASSWORD } from "./oidc-users.server";
import { redact } from "./audit.server";

describe("passwords", () => {
  it("are argon2id hashes that verify only the right password", async () => {
    const hash = await hashPassword("correct horse battery");
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(hash, "correct horse battery")).toBe(true);
    expect(await verifyPassword(hash, "correct horse battery ")).toBe(false);
    expect(await verifyPassword("not a hash", "x")).toBe(false);
    expect(await hashPassword("correct horse battery")).not.toBe(hash);
  });
});

describe("CSRF tokens", () => {
  const key = Buffer.from("k".repeat(48));
  it("are bound to the session and the key", () => {
    const t = csrfToken(key, "s:abc");
    expect(csrfTokenValid(key, "s:abc", t)).toBe(true);
    expect(csrfTokenValid(key, "s:abd", t)).toBe(false);
    expect(csrfTokenValid(Buffer.from("x".repeat(48)), "s:abc", t)).toBe(false);
    expect(csrfTokenValid(key, "s:abc", "")).toBe(false);
    expect(csrfTokenValid(key, "s:abc", null)).toBe(false);
    expect(secretsEqual("a", "a")).toBe(true);
    expect(secretsEqual("a", "ab")).toBe(false);
  });
});

describe("the session secret", () => {
  it("is generated once with mode 0600, then reused; a loose file is tightened", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dcc-key-"));
    try {
      const first = loadSessionKey({ dataDir: dir });
      expect(first.note).toMatch(/generated/);
      expect((await stat(join(dir, "session.key"))).mode & 0o777).toBe(0o600);
      const second = loadSessionKey({ dataDir: dir });
      expect(second.key.equals(first.key)).toBe(true);
      expect(second.note).toBeUndefined();
      await chmod(join(dir, "session.key"), 0o644);
      expect(loadSessionKey({ dataDir: dir }).note).toMatch(/0600/);
      expect((await stat(join(dir, "session.key"))).mode & 0o777).toBe(0o600);
      expect(loadSessionKey({ dataDir: dir, sessionSecret: "s".repeat(40) }).key.toString()).toBe("s".repeat(40));
      await writeFile(join(dir, "session.key"), "short\n");
      expect(() => loadSessionKey({ dataDir: dir })).toThrow(/too short/);
      expect((await readFile(join(dir, "session.key"), "utf8")).trim()).toBe("short");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("audit redaction", () => {
  it("masks secret-named keys and token-looking values, keeps the rest", () => {
    const out = redact({
      name: "ci",
      password: "hunter2",
      nested: { apiToken: "x", note: "used Bearer abc.def and dcc_" + "A".repeat(43) },
      list: ["dcc_" + "B".repeat(43), 3],
      passwordChanged: true,
    });
    expect(out).toEqual({
      name: "ci",
      password: "[redacted]",
      nested: { apiToken: "[redacted]", note: "used [redacted] and [redacted]" },
      list: ["[redacted]", 3],
      passwordChanged: true,
    });
  });
});

describe("sign-in throttling", () => {
  it("lets the first failures through, then doubles the wait up to a cap", () => {
    const rule = THROTTLE.accountAddress;
    expect([1, 2, 3, 4].map((n) => lockDurationMs(n, rule))).toEqual([0, 0, 0, 0]);
    expect([5, 6, 7, 8].map((n) => lockDurationMs(n, rule) / 60_000)).toEqual([1, 2, 4, 8]);
    expect(lockDurationMs(9, rule)).toBe(rule.maxMs);
    expect(lockDurationMs(10_000, rule)).toBe(rule.maxMs);
    expect(lockDurationMs(19, THROTTLE.address)).toBe(0);
    expect(lockDurationMs(20, THROTTLE.address)).toBe(60_000);
  });

  it("never verifies a password against an identity-provider user's placeholder", async () => {
    expect(await verifyPassword(NO_PASSWORD, "")).toBe(false);
    expect(await verifyPassword(NO_PASSWORD, "!oidc")).toBe(false);
  });
});
