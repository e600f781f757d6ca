// Authentication use cases: password hashing (argon2id), browser sessions (stored as SHA-256),
// failed sign-in throttling kept in the database, first-run set-up, the session secret and CSRF
// token derivation. Request handling (cookies, headers) lives in app/auth.server.ts.
import { ROLES } from "../../db/roles";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { hash as argonHash, verify as argonVerify, type Algorithm } from "@node-rs/argon2";
import { and, count, eq, gt, isNull, sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../db/client";
import { sessions, setupTokens, signInThrottle, users, type Role, type User } from "../../db/schema";
import type { Config } from "../config.server";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { ServiceError } from "./errors";

// ---------------------------------------------------------------------------------------------
// Primitives

export const sha256 = (value: string): string => createHash("sha256").update(value).digest("hex");
export const randomSecret = (bytes = 32): string => randomBytes(bytes).toString("base64url");

/** Compares two secrets in constant time (both are hashed first so lengths never leak). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

const nowIso = () => new Date().toISOString();
const isoIn = (ms: number) => new Date(Date.now() + ms).toISOString();

export const UsernameSchema = z
  .string({ error: "must be a string" })
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: "must be 1–63 lower-case letters, digits, dots, hyphens or underscores" });
export const PasswordSchema = z
  .string({ error: "must be a string" })
  .min(12, { error: "must be at least 12 characters" })
  .max(256, { error: "must be at most 256 characters" });
export const RoleSchema = z.enum(ROLES, { error: `must be ${ROLES.slice(0, -1).join(", ")} or ${ROLES.at(-1)}` });

// OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): ~50 ms here.
const ARGON2ID = 2 as unknown as Algorithm;
const ARGON_OPTIONS = { algorithm: ARGON2ID, memoryCost: 19456, timeCost: 2, parallelism: 1 };

export function hashPassword(password: string): Promise<string> {
  return argonHash(password, ARGON_OPTIONS);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argonVerify(hash, password);
  } catch {
    return false;
  }
}

// Unknown user names still cost one argon2 verification, so timing does not reveal which exist.
let dummyHash: Promise<string> | undefined;
async function burnVerify(password: string): Promise<void> {
  dummyHash ??= hashPassword(randomSecret());
  await verifyPassword(await dummyHash, password);
}

// ---------------------------------------------------------------------------------------------
// Session secret and CSRF tokens

/**
 * The key behind CSRF tokens: DCC_SESSION_SECRET, else `session.key` under DCC_DATA_DIR, written
 * once with mode 0600. Console processes that share a database should share this secret.
 */
export function loadSessionKey(config: Pick<Config, "sessionSecret" | "dataDir">): { key: Buffer; note?: string } {
  if (config.sessionSecret) return { key: Buffer.from(config.sessionSecret, "utf8") };
  mkdirSync(config.dataDir, { recursive: true });
  const path = join(config.dataDir, "session.key");
  let note: string | undefined;
  try {
    writeFileSync(path, `${randomSecret(48)}\n`, { flag: "wx", mode: 0o600 });
    note = `generated a session secret in ${path}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  if ((statSync(path).mode & 0o077) !== 0) {
    chmodSync(path, 0o600);
    note = `tightened ${path} to mode 0600`;
  }
  const secret = readFileSync(path, "utf8").trim();
  if (secret.length < 32) throw new Error(`${path} holds too short a session secret; delete it to have a new one generated`);
  return { key: Buffer.from(secret, "utf8"), note };
}

/** A CSRF token bound to `binding` (a session id, or the anonymous CSRF cookie before sign-in). */
export function csrfToken(key: Buffer, binding: string): string {
  return createHmac("sha256", key).update(`csrf\0${binding}`).digest("base64url");
}

export function csrfTokenValid(key: Buffer, binding: string, presented: string | null | undefined): boolean {
  return typeof presented === "string" && presented.length > 0 && secretsEqual(csrfToken(key, binding), presented);
}

// ---------------------------------------------------------------------------------------------
// Sessions

export const SESSION_MAX_AGE_S = 7 * 24 * 3600;
const SESSION_IDLE_MS = 24 * 3600 * 1000;
const SESSION_TOUCH_MS = 60 * 1000;

export interface SessionUser {
  sessionId: string;
  user: Pick<User, "id" | "username" | "role">;
}

/** Starts a session and returns the cookie value (shown to the browser only; the database keeps its hash). */
export async function createSession(db: Pick<Db, "insert">, userId: string, meta: { address?: string; userAgent?: string | null }) {
  const token = randomSecret(32);
  const id = sha256(token);
  const now = nowIso();
  await db.insert(sessions).values({
    id,
    userId,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: isoIn(SESSION_MAX_AGE_S * 1000),
    address: meta.address ?? null,
    userAgent: meta.userAgent?.slice(0, 200) ?? null,
  });
  return { token, id };
}

/** The signed-in user behind a session cookie value, or null (unknown, expired, idle, disabled user). */
export async function findSession(db: Db, token: string): Promise<SessionUser | null> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
  const id = sha256(token);
  const now = new Date();
  const [row] = await db
    .select({ lastSeenAt: sessions.lastSeenAt, userId: users.id, username: users.username, role: users.role })
    .from(sessions)
    .innerJoin(users, eq(sessions.userId, users.id))
    .where(and(eq(sessions.id, id), gt(sessions.expiresAt, now.toISOString()), isNull(users.disabledAt)));
  if (!row) return null;
  const seen = Date.parse(row.lastSeenAt);
  if (now.getTime() - seen > SESSION_IDLE_MS) {
    await db.delete(sessions).where(eq(sessions.id, id));
    return null;
  }
  if (now.getTime() - seen > SESSION_TOUCH_MS) await db.update(sessions).set({ lastSeenAt: now.toISOString() }).where(eq(sessions.id, id));
  return { sessionId: id, user: { id: row.userId, username: row.username, role: row.role } };
}

export async function signOut(ctx: Pick<ConsoleContext, "db">, actor: Actor): Promise<{ ended: number }> {
  if (!actor.sessionId) throw new ServiceError("PRECONDITION_FAILED", "only a browser session can sign out; revoke an API token instead");
  return ctx.db.transaction(async (tx) => {
    const r = await tx.delete(sessions).where(eq(sessions.id, actor.sessionId!));
    await recordAudit(tx, actor, { action: "auth.sign_out", target: `user:${actor.id}` });
    return { ended: r.rowsAffected };
  });
}

export async function signOutEverywhere(ctx: Pick<ConsoleContext, "db">, actor: Actor): Promise<{ ended: number }> {
  if (!actor.userId) throw new ServiceError("PRECONDITION_FAILED", "only a signed-in user has sessions to end");
  return ctx.db.transaction(async (tx) => {
    const r = await tx.delete(sessions).where(eq(sessions.userId, actor.userId!));
    await recordAudit(tx, actor, { action: "auth.sign_out_everywhere", target: `user:${actor.id}`, detail: { sessions: r.rowsAffected } });
    return { ended: r.rowsAffected };
  });
}

// ---------------------------------------------------------------------------------------------
// Failed sign-in throttling, kept in the database across restarts. Keyed per source address and
// per account + address, never per account alone: a flood of wrong passwords for `admin` from one
// address throttles that address, while the right password from an address that has not failed
// still signs in. Each failure past the free ones doubles the wait (capped).

export interface ThrottleRule {
  /** Failures within the window before the first wait. */
  free: number;
  /** The first wait; each further failure doubles it, up to maxMs. */
  baseMs: number;
  maxMs: number;
  /** A run of failures older than this is forgotten. */
  windowMs: number;
}

export const THROTTLE = {
  /** One account from one address: 4 free tries, then 1 min, 2 min, 4 min … up to 15 min. */
  accountAddress: { free: 4, baseMs: 60_000, maxMs: 15 * 60_000, windowMs: 24 * 3600_000 } satisfies ThrottleRule,
  /** Any account from one address (password spraying): 19 free tries, then 1 min doubling up to 1 h. */
  address: { free: 19, baseMs: 60_000, maxMs: 60 * 60_000, windowMs: 24 * 3600_000 } satisfies ThrottleRule,
  /** Wrong set-up tokens from one address. */
  setup: { free: 9, baseMs: 15 * 60_000, maxMs: 60 * 60_000, windowMs: 24 * 3600_000 } satisfies ThrottleRule,
};

/** How long the `failures`-th failure in a row makes the key wait (0 while it is still free). */
export function lockDurationMs(failures: number, rule: ThrottleRule): number {
  if (failures <= rule.free) return 0;
  return Math.min(rule.maxMs, rule.baseMs * 2 ** Math.min(failures - rule.free - 1, 30));
}

async function lockedUntil(db: Db, keys: string[]): Promise<string | null> {
  const now = nowIso();
  let until: string | null = null;
  for (const key of keys) {
    const [row] = await db.select({ lockedUntil: signInThrottle.lockedUntil }).from(signInThrottle).where(eq(signInThrottle.key, key));
    if (row?.lockedUntil && row.lockedUntil > now && (!until || row.lockedUntil > until)) until = row.lockedUntil;
  }
  return until;
}

async function recordFailure(db: Db, key: string, rule: ThrottleRule): Promise<void> {
  const now = nowIso();
  const windowStart = new Date(Date.now() - rule.windowMs).toISOString();
  // One upsert: a failure outside the window starts a new run; the wait follows the new count.
  const rows = await db.all<{ failures: number }>(sql`
    INSERT INTO sign_in_throttle (key, failures, window_started_at, locked_until)
    VALUES (${key}, 1, ${now}, NULL)
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN window_started_at < ${windowStart} THEN 1 ELSE failures + 1 END,
      window_started_at = CASE WHEN window_started_at < ${windowStart} THEN ${now} ELSE window_started_at END
    RETURNING failures`);
  const failures = Number(rows[0]?.failures ?? 1);
  const wait = lockDurationMs(failures, rule);
  if (wait > 0) await db.update(signInThrottle).set({ lockedUntil: isoIn(wait) }).where(eq(signInThrottle.key, key));
}

const accountAddressKey = (username: string, address: string | undefined) => `user:${username.slice(0, 64)}@${address ?? "unknown"}`;
const addressKey = (address: string | undefined) => `addr:${address ?? "unknown"}`;

// ---------------------------------------------------------------------------------------------
// Sign-in

export type SignInResult =
  | { ok: true; token: string; sessionId: string; user: Pick<User, "id" | "username" | "role"> }
  | { ok: false; reason: "invalid" | "locked" | "disabled"; retryAt?: string };

export interface SignInInput {
  username: unknown;
  password: unknown;
  address?: string;
  userAgent?: string | null;
  /** The session the browser presented, ended on success so an id never survives sign-in. */
  previousSessionId?: string;
}

export async function signIn(ctx: Pick<ConsoleContext, "db" | "config">, input: SignInInput): Promise<SignInResult> {
  const db = ctx.db;
  const username = typeof input.username === "string" ? input.username.slice(0, 64) : "";
  const password = typeof input.password === "string" && input.password.length <= 1024 ? input.password : "";
  const anon: Actor = { kind: "anonymous", id: "sign-in", role: "viewer", address: input.address };
  const target = `user:${username || "?"}`;

  if (!ctx.config.passwordLogin) {
    await recordAudit(db, anon, { action: "auth.sign_in", target, outcome: "denied", detail: { reason: "password sign-in is off" } });
    return { ok: false, reason: "disabled" };
  }
  const locked = await lockedUntil(db, [accountAddressKey(username, input.address), addressKey(input.address)]);
  if (locked) {
    await recordAudit(db, anon, { action: "auth.sign_in", target, outcome: "denied", detail: { reason: "locked", until: locked } });
    return { ok: false, reason: "locked", retryAt: locked };
  }

  const [user] = username ? await db.select().from(users).where(eq(users.username, username)) : [];
  let good = false;
  if (user && password) good = (await verifyPassword(user.passwordHash, password)) && !user.disabledAt;
  else await burnVerify(password || "x");

  if (!good) {
    await recordFailure(db, accountAddressKey(username, input.address), THROTTLE.accountAddress);
    await recordFailure(db, addressKey(input.address), THROTTLE.address);
    const reason = !user ? "unknown user" : user.disabledAt ? "disabled" : "wrong password";
    await recordAudit(db, anon, { action: "auth.sign_in", target, outcome: "denied", detail: { reason } });
    return { ok: false, reason: "invalid" };
  }

  return db.transaction(async (tx) => {
    if (input.previousSessionId) await tx.delete(sessions).where(eq(sessions.id, input.previousSessionId));
    const session = await createSession(tx, user.id, { address: input.address, userAgent: input.userAgent });
    await tx.update(users).set({ lastSignInAt: nowIso() }).where(eq(users.id, user.id));
    await tx.delete(signInThrottle).where(eq(signInThrottle.key, accountAddressKey(username, input.address)));
    const actor: Actor = { kind: "user", id: user.username, role: user.role, address: input.address, userId: user.id, sessionId: session.id };
    await recordAudit(tx, actor, { action: "auth.sign_in", target, outcome: "ok" });
    return { ok: true as const, token: session.token, sessionId: session.id, user: { id: user.id, username: user.username, role: user.role } };
  });
}

// ---------------------------------------------------------------------------------------------
// First run

const SETUP_TOKEN_TTL_MS = 24 * 3600 * 1000;

export async function userCount(db: Db): Promise<number> {
  const [row] = await db.select({ n: count() }).from(users);
  return row?.n ?? 0;
}

/**
 * At start, while no user exists: create the admin from DCC_ADMIN_USER/DCC_ADMIN_PASSWORD when
 * given, else issue a one-time set-up token (returned once, for the log; only its hash is kept).
 */
export async function prepareFirstRun(ctx: Pick<ConsoleContext, "db" | "config">): Promise<{ setupToken?: string; createdAdmin?: string }> {
  const { db, config } = ctx;
  if ((await userCount(db)) > 0) return {};
  // Without password sign-in the first admin comes through the identity provider (their groups).
  if (!config.passwordLogin) return {};
  if (config.adminPassword) {
    const passwordHash = await hashPassword(config.adminPassword);
    const system: Actor = { kind: "system", id: "env", role: "admin" };
    const created = await db.transaction(async (tx) => {
      const [n] = await tx.select({ n: count() }).from(users);
      if ((n?.n ?? 0) > 0) return false;
      await tx.insert(users).values({ id: randomUUID(), username: config.adminUser, passwordHash, role: "admin" });
      await recordAudit(tx, system, { action: "user.create", target: `user:${config.adminUser}`, detail: { role: "admin", source: "DCC_ADMIN_PASSWORD" } });
      return true;
    });
    return created ? { createdAdmin: config.adminUser } : {};
  }
  const setupToken = `dcc_setup_${randomSecret(24)}`;
  await db.insert(setupTokens).values({ tokenHash: sha256(setupToken), createdAt: nowIso(), expiresAt: isoIn(SETUP_TOKEN_TTL_MS) });
  return { setupToken };
}

export const SetupInput = z.strictObject({
  setupToken: z.string({ error: "is required" }).min(1, { error: "is required" }).max(200),
  username: UsernameSchema,
  password: PasswordSchema,
});

/** Creates the first admin, once, for whoever holds a set-up token printed at start. */
export async function completeSetup(
  ctx: Pick<ConsoleContext, "db" | "config">,
  raw: unknown,
  meta: { address?: string; userAgent?: string | null },
): Promise<{ token: string; sessionId: string; user: Pick<User, "id" | "username" | "role"> }> {
  const db = ctx.db;
  const anon: Actor = { kind: "anonymous", id: "setup", role: "viewer", address: meta.address };
  const throttleKey = `setup:${meta.address ?? "unknown"}`;
  if (!ctx.config.passwordLogin) throw new ServiceError("FORBIDDEN", "password sign-in is off; sign in with the identity provider");
  if (await lockedUntil(db, [throttleKey])) throw new ServiceError("FORBIDDEN", "too many wrong set-up tokens from this address; try again later");
  if ((await userCount(db)) > 0) {
    await recordAudit(db, anon, { action: "setup.admin", outcome: "denied", detail: { reason: "already set up" } });
    throw new ServiceError("FORBIDDEN", "the console is already set up; sign in instead");
  }
  const parsed = SetupInput.safeParse(raw);
  if (!parsed.success) {
    const fields: Record<string, string> = {};
    for (const issue of parsed.error.issues) fields[String(issue.path[0] ?? "form")] ??= issue.message;
    throw ServiceError.invalid(fields);
  }
  const input = parsed.data;
  const passwordHash = await hashPassword(input.password);
  const result = await db.transaction(
    async (tx) => {
      const [n] = await tx.select({ n: count() }).from(users);
      if ((n?.n ?? 0) > 0) return "taken" as const;
      const used = await tx
        .update(setupTokens)
        .set({ usedAt: nowIso() })
        .where(and(eq(setupTokens.tokenHash, sha256(input.setupToken)), isNull(setupTokens.usedAt), gt(setupTokens.expiresAt, nowIso())));
      if (used.rowsAffected !== 1) return "bad-token" as const;
      const id = randomUUID();
      await tx.insert(users).values({ id, username: input.username, passwordHash, role: "admin", lastSignInAt: nowIso() });
      const session = await createSession(tx, id, meta);
      const actor: Actor = { kind: "user", id: input.username, role: "admin", address: meta.address, userId: id, sessionId: session.id };
      await recordAudit(tx, actor, { action: "setup.admin", target: `user:${input.username}`, detail: { role: "admin" } });
      return { token: session.token, sessionId: session.id, user: { id, username: input.username, role: "admin" as Role } };
    },
    { behavior: "immediate" },
  );
  if (result === "taken") throw new ServiceError("FORBIDDEN", "the console is already set up; sign in instead");
  if (result === "bad-token") {
    await recordFailure(db, throttleKey, THROTTLE.setup);
    await recordAudit(db, anon, { action: "setup.admin", target: `user:${input.username}`, outcome: "denied", detail: { reason: "wrong set-up token" } });
    throw ServiceError.field("FORBIDDEN", "setupToken", "is not a valid set-up token (see the console's log)");
  }
  return result;
}
