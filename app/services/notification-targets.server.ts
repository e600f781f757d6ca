// Notification targets, managed by admins: a generic JSON webhook (HMAC-signed) or a
// Slack-compatible incoming webhook. URLs follow the repository rules (https to public hosts;
// DCC_ALLOW_INSECURE_GIT also admits http and loopback/private; link-local and metadata never).
// URL and secret are sealed at rest; lists show a shortened URL and whether a secret is set.
import { randomBytes } from "node:crypto";
import { desc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { repositoryProblem } from "../../agent/src/contract/validation";
import { NOTIFICATION_EVENTS, NOTIFICATION_KINDS, notificationDeliveries, notificationTargets, type NotificationTarget } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { parseInput } from "./parse-input.server";
import { recordAudit } from "./audit.server";
import { ServiceError } from "./errors";
import { newDeliveryId, notifyEvent } from "./notify.server";
import { seal, secretKey } from "./secret-box.server";

type Ctx = Pick<ConsoleContext, "db" | "config">;

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export const NotificationCreateInput = z.strictObject({
  kind: z.enum(NOTIFICATION_KINDS, { error: "must be json or slack" }),
  url: z.string({ error: "must be a string" }).min(1, { error: "is required" }),
  /** JSON targets only: the HMAC key (16–256 characters); generated and shown once when omitted. */
  secret: z
    .string({ error: "must be a string" })
    .min(16, { error: "must be at least 16 characters" })
    .max(256, { error: "must be at most 256 characters" })
    .refine((s) => !CONTROL.test(s), { error: "must not contain control characters" })
    .optional(),
  events: z
    .array(z.enum(NOTIFICATION_EVENTS, { error: `must be one of ${NOTIFICATION_EVENTS.join(", ")}` }))
    .min(1, { error: "must name at least one event" })
    .refine((e) => new Set(e).size === e.length, { error: "must not repeat an event" })
    .optional(),
});
export const NotificationIdInput = z.strictObject({ id: z.string().regex(/^ntf_[a-f0-9]{16}$/, { error: "is not a notification target id" }) });

export interface NotificationTargetDto {
  id: string;
  kind: NotificationTarget["kind"];
  /** Scheme, host and first path segment; the full URL is not shown again. */
  url: string;
  events: NotificationTarget["events"];
  hasSecret: boolean;
  createdBy: string;
  createdAt: string;
  lastAttemptAt: string | null;
  lastOutcome: NotificationTarget["lastOutcome"];
  lastHttpStatus: number | null;
  lastError: string | null;
  /** Deliveries waiting (first try or a retry). */
  pending: number;
}

function toDto(t: NotificationTarget, pending: number): NotificationTargetDto {
  const { urlSealed: _u, secretSealed, urlDisplay, ...rest } = t;
  return { ...rest, url: urlDisplay, hasSecret: !!secretSealed, pending };
}

/** Enough of a URL to recognise it, without the path that carries a Slack webhook's token. */
export function displayUrl(url: string): string {
  const u = new URL(url);
  const first = u.pathname.split("/").filter(Boolean)[0];
  return `${u.protocol}//${u.host}${first ? `/${first}` : ""}${u.pathname.split("/").filter(Boolean).length > 1 ? "/…" : ""}`;
}

export async function listTargets(ctx: Pick<ConsoleContext, "db">): Promise<NotificationTargetDto[]> {
  const rows = await ctx.db.select().from(notificationTargets).orderBy(desc(notificationTargets.createdAt));
  const counts = await ctx.db
    .select({ targetId: notificationDeliveries.targetId, n: sql<number>`count(*)` })
    .from(notificationDeliveries)
    .where(eq(notificationDeliveries.state, "pending"))
    .groupBy(notificationDeliveries.targetId);
  const byTarget = new Map(counts.map((c) => [c.targetId, Number(c.n)]));
  return rows.map((t) => toDto(t, byTarget.get(t.id) ?? 0));
}

/** `{ item, secret? }`: a generated signing secret is returned this once. */
export async function createTarget(ctx: Ctx, actor: Actor, raw: unknown): Promise<{ item: NotificationTargetDto; secret?: string }> {
  const input = parseInput(NotificationCreateInput, raw);
  const problem = repositoryProblem(input.url, { allowInsecure: ctx.config.allowInsecureGit });
  if (problem) throw ServiceError.field("BAD_REQUEST", "url", problem);
  if (input.kind === "slack" && input.secret !== undefined) throw ServiceError.field("BAD_REQUEST", "secret", "only JSON targets are signed; a Slack URL is its own secret");
  const generated = input.kind === "json" && input.secret === undefined ? `whsec_${randomBytes(24).toString("base64url")}` : undefined;
  const secret = input.secret ?? generated;
  const key = secretKey(ctx.config);
  const id = `ntf_${randomBytes(8).toString("hex")}`;
  const events = input.events ?? [...NOTIFICATION_EVENTS];
  const row = await ctx.db.transaction(async (tx) => {
    const [r] = await tx
      .insert(notificationTargets)
      .values({
        id,
        kind: input.kind,
        urlDisplay: displayUrl(input.url),
        urlSealed: seal(key, `notify-url:${id}`, input.url),
        secretSealed: secret ? seal(key, `notify-secret:${id}`, secret) : null,
        events,
        createdBy: `${actor.kind}:${actor.id}`,
      })
      .returning();
    await recordAudit(tx, actor, { action: "notification.create", target: `notification:${id}`, detail: { kind: input.kind, url: displayUrl(input.url), events, signed: !!secret } });
    return r;
  });
  return { item: toDto(row, 0), ...(generated ? { secret: generated } : {}) };
}

export async function deleteTarget(ctx: Pick<ConsoleContext, "db">, actor: Actor, raw: unknown): Promise<{ id: string; deleted: true }> {
  const { id } = parseInput(NotificationIdInput, raw);
  await ctx.db.transaction(async (tx) => {
    const [row] = await tx.select().from(notificationTargets).where(eq(notificationTargets.id, id));
    if (!row) throw ServiceError.field("NOT_FOUND", "id", `does not name a notification target (${id})`);
    await tx.delete(notificationTargets).where(eq(notificationTargets.id, id));
    await tx.update(notificationDeliveries).set({ state: "skipped", lastError: "target deleted" }).where(sql`${notificationDeliveries.targetId} = ${id} AND ${notificationDeliveries.state} = 'pending'`);
    await recordAudit(tx, actor, { action: "notification.delete", target: `notification:${id}`, detail: { kind: row.kind, url: row.urlDisplay } });
  });
  return { id, deleted: true };
}

/** Queues a test message to the target (delivered like any event: retried, visible as its last status). */
export async function testTarget(ctx: Pick<ConsoleContext, "db">, actor: Actor, raw: unknown): Promise<{ id: string; queued: boolean }> {
  const { id } = parseInput(NotificationIdInput, raw);
  const [row] = await ctx.db.select({ id: notificationTargets.id }).from(notificationTargets).where(eq(notificationTargets.id, id));
  if (!row) throw ServiceError.field("NOT_FOUND", "id", `does not name a notification target (${id})`);
  const queued = await notifyEvent(ctx, { kind: "test", targetId: id, key: `test:${newDeliveryId()}`, detail: { by: `${actor.kind}:${actor.id}` } });
  await recordAudit(ctx.db, actor, { action: "notification.test", target: `notification:${id}` });
  return { id, queued: queued > 0 };
}
