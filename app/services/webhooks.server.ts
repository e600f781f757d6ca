// Deploy webhooks: an app's secret (created, shown once, rotated, removed by an operator; kept
// sealed with the console's secret key), and the deliveries of GitHub, GitLab and Gitea. A
// delivery queues a reinstall only when its proof checks out on the raw body, it is a push to the
// app's branch, and its delivery id was not seen before. Every delivery, accepted or refused, is
// an audit row and, when the app exists, an event on its timeline.
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { appWebhooks, webhookDeliveries, type App } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { randomSecret } from "./auth.server";
import { recordAudit } from "./audit.server";
import { appRow, requireAppRow } from "./app-writes.server";
import { ServiceError, httpStatusOf } from "./errors";
import { publishAll, recordEvent } from "./events.server";
import { identifyForge, parsePush, verifyProof, type Headers } from "./forge-webhooks";
import { requestAppAction } from "./app-actions.server";
import { open, seal, secretKey } from "./secret-box.server";

export const WEBHOOK_BODY_LIMIT = 1024 * 1024;
export const WebhookInput = z.strictObject({ name: AppNameSchema, rotate: z.boolean().optional() });
export const WebhookDeleteInput = z.strictObject({ name: AppNameSchema });

const purpose = (appId: string) => `webhook:${appId}`;

export interface WebhookInfo {
  url: string;
  /** Shown when it was created or rotated by this call; null afterwards (it is never shown again). */
  secret: string | null;
  createdAt: string;
  rotatedAt: string | null;
}

/** The app's webhook URL; creates the secret on the first call and replaces it with `rotate`. */
export async function ensureWebhook(ctx: ConsoleContext, actor: Actor, input: z.infer<typeof WebhookInput>, origin: string): Promise<WebhookInfo> {
  const row = await requireAppRow(ctx.db, input.name);
  const url = `${origin}/hooks/deploy/${row.name}`;
  const [existing] = await ctx.db.select().from(appWebhooks).where(eq(appWebhooks.appId, row.id));
  if (existing && !input.rotate) return { url, secret: null, createdAt: existing.createdAt, rotatedAt: existing.rotatedAt };
  const secret = `whsec_${randomSecret(32)}`;
  const sealed = seal(secretKey(ctx.config), purpose(row.id), secret);
  const now = new Date().toISOString();
  await ctx.db.transaction(async (tx) => {
    if (existing) await tx.update(appWebhooks).set({ secretSealed: sealed, rotatedAt: now }).where(eq(appWebhooks.appId, row.id));
    else await tx.insert(appWebhooks).values({ appId: row.id, secretSealed: sealed, createdBy: `${actor.kind}:${actor.id}`, createdAt: now });
    await recordAudit(tx, actor, { action: existing ? "app.webhook.rotate" : "app.webhook.create", target: row.name });
  });
  return { url, secret, createdAt: existing?.createdAt ?? now, rotatedAt: existing ? now : null };
}

export async function deleteWebhook(ctx: ConsoleContext, actor: Actor, input: z.infer<typeof WebhookDeleteInput>): Promise<{ deleted: boolean }> {
  const row = await requireAppRow(ctx.db, input.name);
  return ctx.db.transaction(async (tx) => {
    const r = await tx.delete(appWebhooks).where(eq(appWebhooks.appId, row.id));
    if (r.rowsAffected) await recordAudit(tx, actor, { action: "app.webhook.delete", target: row.name });
    return { deleted: r.rowsAffected > 0 };
  });
}

// ---------------------------------------------------------------------------------------------
// Deliveries

export interface DeliveryInput {
  appName: string;
  headers: Headers;
  body: Buffer;
  address?: string;
  /** The body was over the limit and not read. */
  oversized?: boolean;
}

export interface DeliveryAnswer {
  status: number;
  body: Record<string, unknown>;
}

type Outcome = "queued" | "ignored" | "refused" | "failed";

const DeliveryIdSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,200}$/);
const printable = (v: string, max = 100) => v.replace(/[^\x20-\x7e]/g, "?").slice(0, max);

/** The app's branch: its gitRef where apps have one, else the default branch the payload states. */
function appBranch(row: App, defaultBranch: string | null): string | null {
  const gitRef = (row as unknown as Record<string, unknown>).gitRef;
  if (typeof gitRef === "string" && gitRef) return gitRef.replace(/^refs\/heads\//, "");
  return defaultBranch;
}

export async function receiveDelivery(ctx: ConsoleContext, input: DeliveryInput): Promise<DeliveryAnswer> {
  const forge = identifyForge(input.headers);
  const actor: Actor = { kind: "webhook", id: forge?.forge ?? "unknown", role: "viewer", address: input.address };
  const validName = AppNameSchema.safeParse(input.appName).success;
  const row = validName ? await appRow(ctx.db, input.appName) : undefined;
  const delivery = forge?.deliveryId ? printable(forge.deliveryId, 200) : null;

  const answer = async (status: number, outcome: Outcome, reason: string, extra: Record<string, unknown> = {}): Promise<DeliveryAnswer> => {
    const detail = { forge: forge?.forge ?? null, event: forge ? printable(forge.event, 50) : null, delivery, outcome, reason, ...extra };
    const auditOutcome = outcome === "refused" ? "denied" : outcome === "failed" ? "error" : "ok";
    await recordAudit(ctx.db, actor, { action: "webhook.deliver", target: row?.name ?? printable(input.appName), outcome: auditOutcome, detail });
    if (row) publishAll(ctx, [await recordEvent(ctx.db, { appId: row.id, appName: row.name, type: "webhook", data: detail })]);
    return { status, body: { ok: status < 300, outcome, reason, ...extra } };
  };

  if (!validName) return answer(400, "refused", "not an app name");
  if (input.oversized || input.body.length > WEBHOOK_BODY_LIMIT) return answer(413, "refused", `body larger than ${WEBHOOK_BODY_LIMIT} bytes`);
  if (!forge) return answer(400, "refused", "not a GitHub, GitLab or Gitea delivery (no X-GitHub-Event, X-Gitlab-Event or X-Gitea-Event header)");
  // No app, no webhook and a wrong proof all answer the same, so the endpoint does not tell
  // strangers which apps exist.
  const [hook] = row ? await ctx.db.select().from(appWebhooks).where(eq(appWebhooks.appId, row.id)) : [];
  const secret = hook ? open(secretKey(ctx.config), purpose(row!.id), hook.secretSealed) : null;
  if (!secret || !verifyProof(forge, secret, input.body)) {
    const why = !row ? "no such app" : !hook ? "the app has no webhook" : !secret ? "the webhook secret cannot be opened with this console's key" : forge.proof ? "bad signature" : "missing signature";
    return answer(401, "refused", why === "no such app" || why === "the app has no webhook" ? `invalid signature (${why})` : why);
  }
  if (!forge.deliveryId || !DeliveryIdSchema.safeParse(forge.deliveryId).success) return answer(400, "refused", "missing or malformed delivery id");
  let payload: unknown;
  try {
    payload = JSON.parse(input.body.toString("utf8"));
  } catch {
    return answer(400, "refused", "the body is not JSON (send application/json)");
  }
  await ctx.db.update(appWebhooks).set({ lastDeliveryAt: new Date().toISOString() }).where(eq(appWebhooks.appId, row!.id));
  if (forge.event === "ping") return answer(200, "ignored", "ping");
  if (forge.event !== "push") return answer(200, "ignored", `event ${printable(forge.event, 50)} does not deploy`);

  // A delivery id is remembered only once its proof checked out, so strangers cannot block one.
  const claimed = await ctx.db
    .insert(webhookDeliveries)
    .values({ appId: row!.id, forge: forge.forge, deliveryId: forge.deliveryId })
    .onConflictDoNothing()
    .returning({ id: webhookDeliveries.id });
  if (!claimed.length) return answer(200, "ignored", "replayed delivery");

  const push = parsePush(forge.forge, payload);
  const branch = appBranch(row!, push.defaultBranch);
  const pushed = { branch: push.branch ? printable(push.branch) : null, commit: push.after ? printable(push.after, 64) : null };
  if (!push.branch) return answer(200, "ignored", "not a branch push", pushed);
  if (push.deleted) return answer(200, "ignored", "the branch was deleted", pushed);
  if (!branch) return answer(200, "ignored", "the app's branch is unknown (no gitRef and no default branch in the payload)", pushed);
  if (push.branch !== branch) return answer(200, "ignored", `push to ${printable(push.branch)}, not to the app's branch ${printable(branch)}`, pushed);

  try {
    const r = await requestAppAction(ctx, { ...actor, role: "operator" }, "reinstall", row!.name);
    return answer(202, "queued", "reinstall queued", { ...pushed, commandId: r.commandId });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    // Not done: forget the delivery id so the forge's "redeliver" can try again.
    await ctx.db.delete(webhookDeliveries).where(and(eq(webhookDeliveries.appId, row!.id), eq(webhookDeliveries.forge, forge.forge), eq(webhookDeliveries.deliveryId, forge.deliveryId)));
    return answer(httpStatusOf(e), "failed", e.message, pushed);
  }
}
