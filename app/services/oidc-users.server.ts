// People who sign in through the identity provider: linked to a console user by issuer + subject
// (never by e-mail or user name, which a provider may let people change), their role taken from
// their groups at every sign-in. With no user yet, only someone whose groups map to admin may be
// the first (so the first user of a console is always an admin).
import { randomUUID } from "node:crypto";
import { and, count, eq } from "drizzle-orm";
import { oidcIdentities, sessions, users, type Role } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { createSession, UsernameSchema } from "./auth.server";

/** Stored instead of a password hash: no password verifies against it (argon2 refuses the format). */
export const NO_PASSWORD = "!oidc";

export interface IdentityInput {
  issuer: string;
  subject: string;
  email: string | null;
  /** Candidates for a new user's name, best first (preferred_username, email, name). */
  names: string[];
  groups: string[];
  role: Role;
  address?: string;
  userAgent?: string | null;
  previousSessionId?: string;
  next: string;
}

export type OidcSignInResult =
  | { ok: true; token: string; next: string; user: { id: string; username: string; role: Role }; created: boolean }
  | { ok: false; reason: "expired" | "refused" | "disabled" | "no-admin"; message: string };

/** A user name from what the provider says: lower-cased, other characters as hyphens, a DNS-ish label. */
export function usernameFrom(names: string[]): string {
  for (const raw of names) {
    const base = raw.split("@")[0].toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+/, "").slice(0, 50).replace(/[-.]+$/, "");
    if (UsernameSchema.safeParse(base).success) return base;
  }
  return "user";
}

const OIDC_SYSTEM: Actor = { kind: "system", id: "oidc", role: "admin" };

export async function signInWithIdentity(ctx: Pick<ConsoleContext, "db">, input: IdentityInput): Promise<OidcSignInResult> {
  const anon: Actor = { kind: "anonymous", id: "oidc", role: "viewer", address: input.address };
  const base = usernameFrom(input.names);
  const result = await ctx.db.transaction(
    async (tx) => {
      const [linked] = await tx
        .select({ identityId: oidcIdentities.id, user: users })
        .from(oidcIdentities)
        .innerJoin(users, eq(oidcIdentities.userId, users.id))
        .where(and(eq(oidcIdentities.issuer, input.issuer), eq(oidcIdentities.subject, input.subject)));
      const now = new Date().toISOString();
      let user: { id: string; username: string; role: Role };
      let created = false;
      if (linked) {
        if (linked.user.disabledAt) return { ok: false as const, reason: "disabled" as const, message: `user ${linked.user.username} is disabled` };
        user = { id: linked.user.id, username: linked.user.username, role: input.role };
        if (linked.user.role !== input.role) {
          await tx.update(users).set({ role: input.role, updatedAt: now }).where(eq(users.id, user.id));
          await recordAudit(tx, OIDC_SYSTEM, { action: "user.update", target: `user:${user.username}`, detail: { role: input.role, from: linked.user.role, source: "identity provider groups" } });
        }
        await tx.update(oidcIdentities).set({ groups: input.groups, email: input.email, lastSignInAt: now }).where(eq(oidcIdentities.id, linked.identityId));
      } else {
        const [n] = await tx.select({ n: count() }).from(users);
        if ((n?.n ?? 0) === 0 && input.role !== "admin") {
          return { ok: false as const, reason: "no-admin" as const, message: "this console has no admin yet: the first sign-in must be by a member of an admin group" };
        }
        // A local user of the same name is never taken over: the new one gets a suffix.
        let username = base;
        for (let i = 2; ; i++) {
          const [taken] = await tx.select({ id: users.id }).from(users).where(eq(users.username, username));
          if (!taken) break;
          username = `${base.slice(0, 56)}-${i}`;
        }
        user = { id: randomUUID(), username, role: input.role };
        await tx.insert(users).values({ id: user.id, username, passwordHash: NO_PASSWORD, role: input.role });
        await tx.insert(oidcIdentities).values({ id: randomUUID(), issuer: input.issuer, subject: input.subject, userId: user.id, email: input.email, groups: input.groups, lastSignInAt: now });
        await recordAudit(tx, OIDC_SYSTEM, { action: "user.create", target: `user:${username}`, detail: { role: input.role, source: "identity provider", issuer: input.issuer } });
        created = true;
      }
      if (input.previousSessionId) await tx.delete(sessions).where(eq(sessions.id, input.previousSessionId));
      const session = await createSession(tx, user.id, { address: input.address, userAgent: input.userAgent });
      await tx.update(users).set({ lastSignInAt: now }).where(eq(users.id, user.id));
      const actor: Actor = { kind: "user", id: user.username, role: user.role, address: input.address, userId: user.id, sessionId: session.id };
      await recordAudit(tx, actor, { action: "auth.sign_in", target: `user:${user.username}`, outcome: "ok", detail: { method: "oidc", groups: input.groups.slice(0, 50), created } });
      return { ok: true as const, token: session.token, next: input.next, user, created };
    },
    { behavior: "immediate" },
  );
  if (!result.ok) {
    await recordAudit(ctx.db, anon, { action: "auth.sign_in", target: "oidc", outcome: "denied", detail: { method: "oidc", reason: result.reason, subject: input.subject.slice(0, 200) } });
  }
  return result;
}

/** True when the user came from the identity provider (sign-out then also ends the provider's session). */
export async function hasIdentity(ctx: Pick<ConsoleContext, "db">, userId: string): Promise<boolean> {
  const [row] = await ctx.db.select({ id: oidcIdentities.id }).from(oidcIdentities).where(eq(oidcIdentities.userId, userId)).limit(1);
  return Boolean(row);
}
