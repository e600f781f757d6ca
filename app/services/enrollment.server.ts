// Enrolment: one-time tokens (only their SHA-256 is stored) that let a new agent register its
// public key once, and the lookup of a host's key when its agent authenticates.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { and, eq, gt, isNull } from "drizzle-orm";
import { z } from "zod";
import { enrollments, hosts } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { consoleKey } from "./console-key.server";

export const ENROLLMENT_TTL_MS = 60 * 60 * 1000;
export const HostNameSchema = z
  .string({ error: "must be a string" })
  .min(1, { error: "is required" })
  .max(63, { error: "must be at most 63 characters" })
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/, { error: "must be letters, digits, dots, hyphens and underscores" });

export const CreateEnrollmentInput = z.strictObject({ name: HostNameSchema.optional() }).optional();

export interface EnrollmentDto {
  /** Shown once; only its hash is kept. */
  token: string;
  expiresAt: string;
  /** The agent endpoint of this console. */
  consoleUrl: string;
  consolePublicKey: string;
  consoleFingerprint: string;
  /** The one-liner that starts an agent with this token (single-file build, Node 20 only). */
  command: string;
}

export const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

/** `https://console` → `wss://console/agent`; `http://` → `ws://`. */
export function agentEndpoint(consoleOrigin: string): string {
  const url = new URL(consoleOrigin);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.pathname = "/agent";
  url.search = "";
  url.hash = "";
  return url.toString();
}

export async function createEnrollment(
  ctx: Pick<ConsoleContext, "db" | "config">,
  actor: Actor,
  input: { name?: string; consoleOrigin: string; ttlMs?: number },
): Promise<EnrollmentDto> {
  const token = "dcce_" + randomBytes(32).toString("base64url");
  const expiresAt = new Date(Date.now() + (input.ttlMs ?? ENROLLMENT_TTL_MS)).toISOString();
  const id = randomUUID();
  await ctx.db.transaction(async (tx) => {
    await tx.insert(enrollments).values({ id, tokenHash: hashToken(token), hostName: input.name ?? null, expiresAt, createdBy: `${actor.kind}:${actor.id}` });
    await recordAudit(tx, actor, { action: "host.enrollment.create", target: input.name ?? null, detail: { enrollmentId: id, expiresAt } });
  });
  const key = consoleKey(ctx.config.dataDir);
  const consoleUrl = agentEndpoint(input.consoleOrigin);
  const insecure = consoleUrl.startsWith("ws:") && !/^ws:\/\/(localhost|127\.|\[::1\])/.test(consoleUrl) ? " --allow-insecure-ws" : "";
  return {
    token,
    expiresAt,
    consoleUrl,
    consolePublicKey: key.publicKey,
    consoleFingerprint: key.fingerprint,
    command: `node dcc-agent.mjs --console ${consoleUrl} --enroll ${token} --console-fingerprint ${key.fingerprint}${insecure}`,
  };
}

export type RedeemResult = { ok: true; hostId: string; name: string } | { ok: false; reason: string };

/** Spends a token once: records the host with the agent's public key. Reused or expired tokens are refused. */
export async function redeemEnrollment(
  ctx: Pick<ConsoleContext, "db">,
  input: { token: string; publicKey: string; name?: string; address: string | null },
): Promise<RedeemResult> {
  const now = new Date().toISOString();
  const hostId = randomUUID();
  const actor: Actor = { kind: "agent", id: hostId, role: "viewer", address: input.address ?? undefined };
  return ctx.db.transaction(async (tx) => {
    const [spent] = await tx
      .update(enrollments)
      .set({ usedAt: now, hostId })
      .where(and(eq(enrollments.tokenHash, hashToken(input.token)), isNull(enrollments.usedAt), gt(enrollments.expiresAt, now)))
      .returning({ id: enrollments.id, hostName: enrollments.hostName });
    if (!spent) {
      const [known] = await tx.select({ usedAt: enrollments.usedAt }).from(enrollments).where(eq(enrollments.tokenHash, hashToken(input.token)));
      const reason = !known ? "enrolment token is not known" : known.usedAt ? "enrolment token was already used" : "enrolment token has expired";
      await recordAudit(tx, { ...actor, id: "unenrolled" }, { action: "host.enroll", outcome: "denied", detail: { reason } });
      return { ok: false as const, reason };
    }
    const name = spent.hostName ?? input.name ?? `host-${hostId.slice(0, 8)}`;
    await tx.insert(hosts).values({ id: hostId, name, publicKey: input.publicKey, address: input.address });
    await recordAudit(tx, actor, { action: "host.enroll", target: hostId, detail: { name, enrollmentId: spent.id } });
    return { ok: true as const, hostId, name };
  });
}

export interface HostCredentials {
  publicKey: string | null;
  revoked: boolean;
}

export async function hostCredentials(ctx: Pick<ConsoleContext, "db">, hostId: string): Promise<HostCredentials | null> {
  const [h] = await ctx.db.select({ publicKey: hosts.publicKey, revokedAt: hosts.revokedAt }).from(hosts).where(eq(hosts.id, hostId));
  return h ? { publicKey: h.publicKey, revoked: h.revokedAt != null } : null;
}
