// The console's side of the host gateways: access tickets for people (signed with the console key
// that agents pin), API-token checks asked by agents, and per-app share links for people without
// an account. The gateway itself runs on each host (agent/src/gateway).
import { randomBytes, randomUUID } from "node:crypto";
import { and, desc, eq, gt, isNull, or } from "drizzle-orm";
import { z } from "zod";
import { SESSION_MAX_MS, TICKET_TTL_MS, signTicket, type GatewayTokenAnswer, type GatewayTokenCheck } from "../../agent/src/contract/gateway";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { apiTokens, apps, gatewayShares, hosts } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { hostGateway } from "./apps.server";
import { recordAudit } from "./audit.server";
import { sha256 } from "./auth.server";
import { consoleKey } from "./console-key.server";
import { ServiceError } from "./errors";
import { parseInput } from "./parse-input.server";

/** How long a gateway cookie from a share link lasts before the browser comes back for a new ticket (revocation takes effect then). */
export const SHARE_SESSION_MS = 15 * 60_000;
export const SHARE_COOKIE = "dcc_share";
const SHARE_PREFIX = "dccs_";
const SHARE_SHAPE = /^dccs_[A-Za-z0-9_-]{32,64}$/;

/** An API token presented at a host's gateway: valid (any role) and the app is on that host. */
export async function answerGatewayToken(ctx: Pick<ConsoleContext, "db" | "config">, hostId: string, msg: GatewayTokenCheck): Promise<GatewayTokenAnswer> {
  const no = { type: "gateway-token-answer" as const, requestId: msg.requestId, ok: false };
  const [app] = await ctx.db.select({ id: apps.id }).from(apps).where(and(eq(apps.name, msg.app), eq(apps.hostId, hostId)));
  if (!app) return no;
  if (ctx.config.adminToken && sha256(ctx.config.adminToken) === msg.tokenHash) return { ...no, ok: true, sub: "token:admin" };
  const now = new Date().toISOString();
  const [row] = await ctx.db
    .select({ id: apiTokens.id })
    .from(apiTokens)
    .where(and(eq(apiTokens.tokenHash, msg.tokenHash), isNull(apiTokens.revokedAt), or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, now))));
  return row ? { ...no, ok: true, sub: `token:${row.id}` } : no;
}

export const TicketRequestInput = z.strictObject({
  app: AppNameSchema,
  /** Where on the app to land (default: its front page). */
  return: z.string().min(1).max(4000).optional(),
});

/**
 * Where to send a browser that asked for `app`: the app's ticket landing on its gateway with a
 * fresh ticket, and the path it wanted. The return URL must be on that app's own gateway name.
 */
export async function ticketRedirect(ctx: Pick<ConsoleContext, "db" | "config">, who: { sub: string; until: number }, raw: unknown): Promise<string> {
  const input = parseInput(TicketRequestInput, raw);
  const [row] = await ctx.db.select({ hostId: apps.hostId, facts: hosts.facts }).from(apps).leftJoin(hosts, eq(apps.hostId, hosts.id)).where(eq(apps.name, input.app));
  if (!row) throw ServiceError.field("NOT_FOUND", "app", `does not name an existing app (${input.app})`);
  const gw = hostGateway(row.facts);
  if (!row.hostId || !gw) throw ServiceError.field("BAD_REQUEST", "app", "is not behind a gateway");
  const origin = `https://${input.app}.${gw.domain}${gw.httpsPort === 443 ? "" : `:${gw.httpsPort}`}`;
  let ret: URL;
  try {
    ret = new URL(input.return ?? `${origin}/`);
  } catch {
    throw ServiceError.field("BAD_REQUEST", "return", "is not a URL");
  }
  // Only back to the app that asked: never an open redirect with a ticket attached.
  if (ret.origin !== origin) throw ServiceError.field("BAD_REQUEST", "return", `must be on ${origin}`);
  const now = Date.now();
  const ticket = signTicket(
    { v: 1, hostId: row.hostId, app: input.app, sub: who.sub, exp: now + TICKET_TTL_MS, until: Math.min(who.until, now + SESSION_MAX_MS), nonce: randomBytes(12).toString("base64url") },
    consoleKey(ctx.config.dataDir).privateKey,
  );
  return `${origin}/.dcc/ticket?t=${ticket}&r=${encodeURIComponent(ret.pathname + ret.search)}`;
}

export const actorSub = (actor: Actor) => `user:${(actor.userId ?? actor.id).replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 90)}`;

// ---------------------------------------------------------------------------------------------
// Share links

export const ShareCreateInput = z.strictObject({
  name: AppNameSchema,
  /** Hours until the link stops working (1 hour to 30 days). */
  expiresInHours: z.number().int().min(1).max(720),
  label: z.string().max(100).regex(/^[^\x00-\x1f\x7f]*$/, { error: "must not contain control characters" }).optional(),
});
export const ShareListInput = z.strictObject({ name: AppNameSchema });
export const ShareRevokeInput = z.strictObject({ name: AppNameSchema, id: z.string().regex(/^shr_[a-f0-9]{16}$/, { error: "is not a share link id" }) });

export interface ShareDto {
  id: string;
  app: string;
  label: string | null;
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

async function appRow(ctx: Pick<ConsoleContext, "db">, name: string) {
  const [row] = await ctx.db.select({ id: apps.id, name: apps.name }).from(apps).where(eq(apps.name, name));
  if (!row) throw ServiceError.field("NOT_FOUND", "name", `does not name an existing app (${name})`);
  return row;
}

const toShare = (app: string, r: typeof gatewayShares.$inferSelect): ShareDto => ({
  id: r.id,
  app,
  label: r.label,
  createdBy: r.createdBy,
  createdAt: r.createdAt,
  expiresAt: r.expiresAt,
  revokedAt: r.revokedAt,
});

/** A new share link: `{ url, item }`; the URL (with its token) is shown once. */
export async function createShareLink(ctx: Pick<ConsoleContext, "db">, actor: Actor, raw: unknown, origin: string): Promise<{ url: string; item: ShareDto }> {
  const input = parseInput(ShareCreateInput, raw);
  const app = await appRow(ctx, input.name);
  const token = SHARE_PREFIX + randomBytes(24).toString("base64url");
  const id = `shr_${randomUUID().replace(/-/g, "").slice(0, 16)}`;
  const expiresAt = new Date(Date.now() + input.expiresInHours * 3600_000).toISOString();
  const [row] = await ctx.db.transaction(async (tx) => {
    const rows = await tx.insert(gatewayShares).values({ id, appId: app.id, tokenHash: sha256(token), label: input.label ?? null, createdBy: actor.id, expiresAt }).returning();
    await recordAudit(tx, actor, { action: "app.share.create", target: app.name, detail: { id, expiresAt } });
    return rows;
  });
  return { url: `${origin}/gateway/share/${token}`, item: toShare(app.name, row) };
}

export async function listShareLinks(ctx: Pick<ConsoleContext, "db">, raw: unknown): Promise<ShareDto[]> {
  const input = parseInput(ShareListInput, raw);
  const app = await appRow(ctx, input.name);
  const rows = await ctx.db.select().from(gatewayShares).where(eq(gatewayShares.appId, app.id)).orderBy(desc(gatewayShares.createdAt));
  return rows.map((r) => toShare(app.name, r));
}

export async function revokeShareLink(ctx: Pick<ConsoleContext, "db">, actor: Actor, raw: unknown): Promise<ShareDto> {
  const input = parseInput(ShareRevokeInput, raw);
  const app = await appRow(ctx, input.name);
  const now = new Date().toISOString();
  const row = await ctx.db.transaction(async (tx) => {
    const [r] = await tx.select().from(gatewayShares).where(and(eq(gatewayShares.id, input.id), eq(gatewayShares.appId, app.id)));
    if (!r) throw ServiceError.field("NOT_FOUND", "id", `does not name a share link of ${app.name}`);
    if (r.revokedAt) return r;
    const [u] = await tx.update(gatewayShares).set({ revokedAt: now }).where(eq(gatewayShares.id, r.id)).returning();
    await recordAudit(tx, actor, { action: "app.share.revoke", target: app.name, detail: { id: r.id } });
    return u;
  });
  return toShare(app.name, row);
}

/** The live share link behind a presented token: its app and how long its gateway cookie may last. */
export async function redeemShare(ctx: Pick<ConsoleContext, "db">, token: string): Promise<{ id: string; app: string; until: number; expires: number } | null> {
  if (!SHARE_SHAPE.test(token)) return null;
  const now = new Date().toISOString();
  const [r] = await ctx.db
    .select({ id: gatewayShares.id, app: apps.name, expiresAt: gatewayShares.expiresAt })
    .from(gatewayShares)
    .innerJoin(apps, eq(gatewayShares.appId, apps.id))
    .where(and(eq(gatewayShares.tokenHash, sha256(token)), isNull(gatewayShares.revokedAt), gt(gatewayShares.expiresAt, now)));
  if (!r) return null;
  const expires = Date.parse(r.expiresAt);
  return { id: r.id, app: r.app, until: Math.min(expires, Date.now() + SHARE_SESSION_MS), expires };
}

/** The share token a browser carries for `app` on the console's /gateway paths, if any. */
export function shareCookie(request: Request, app: string): string | null {
  const name = `${SHARE_COOKIE}_${app}=`;
  for (const part of (request.headers.get("cookie") ?? "").split(/;\s*/)) {
    if (part.startsWith(name)) return part.slice(name.length);
  }
  return null;
}

/** Kept by the browser for /gateway only, so it can fetch new tickets until the link ends. */
export function shareCookieHeader(app: string, token: string, until: number, secure: boolean): string {
  const maxAge = Math.max(0, Math.floor((until - Date.now()) / 1000));
  return `${SHARE_COOKIE}_${app}=${token}; Path=/gateway; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure ? "; Secure" : ""}`;
}
