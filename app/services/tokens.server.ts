// API tokens for CI/CD: `dcc_` + 43 random characters, shown once at creation, stored as SHA-256,
// each with a role and an optional expiry; revoked tokens are refused on the next request.
import { randomBytes } from "node:crypto";
import { and, desc, eq, gt, isNull, or } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../db/client";
import { apiTokens, type ApiToken, type Role } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { parseInput } from "./parse-input.server";
import { RoleSchema, randomSecret, sha256 } from "./auth.server";
import { ServiceError } from "./errors";

export const TOKEN_PREFIX = "dcc_";
const TOKEN_SHAPE = /^dcc_[A-Za-z0-9_-]{43}$/;

export const TokenCreateInput = z.strictObject({
  name: z
    .string({ error: "must be a string" })
    .min(1, { error: "is required" })
    .max(80, { error: "must be at most 80 characters" })
    .regex(/^[^\u0000-\u001f\u007f]+$/, { error: "must not contain control characters" }),
  role: RoleSchema,
  /** ISO 8601 date-time; omitted = never expires. */
  expiresAt: z.iso.datetime({ offset: true, error: "must be an ISO 8601 date-time" }).optional(),
});
export const TokenIdInput = z.strictObject({ id: z.string().regex(/^tok_[a-f0-9]{16}$/, { error: "is not a token id" }) });

export interface TokenDto {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  createdBy: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  active: boolean;
}

function toDto(t: ApiToken): TokenDto {
  const { tokenHash: _hash, ...rest } = t;
  return { ...rest, active: !t.revokedAt && (!t.expiresAt || t.expiresAt > new Date().toISOString()) };
}

export async function listTokens(ctx: Pick<ConsoleContext, "db">): Promise<TokenDto[]> {
  const rows = await ctx.db.select().from(apiTokens).orderBy(desc(apiTokens.createdAt));
  return rows.map(toDto);
}

export async function createToken(ctx: Pick<ConsoleContext, "db">, actor: Actor, raw: unknown): Promise<{ token: string; item: TokenDto }> {
  const input = parseInput(TokenCreateInput, raw);
  const expiresAt = input.expiresAt ? new Date(input.expiresAt).toISOString() : null;
  if (expiresAt && expiresAt <= new Date().toISOString()) throw ServiceError.field("BAD_REQUEST", "expiresAt", "must be in the future");
  const token = `${TOKEN_PREFIX}${randomSecret(32)}`;
  const id = `tok_${randomBytes(8).toString("hex")}`;
  const row = await ctx.db.transaction(async (tx) => {
    const [r] = await tx
      .insert(apiTokens)
      .values({ id, name: input.name, tokenHash: sha256(token), prefix: token.slice(0, 10), role: input.role, createdBy: `${actor.kind}:${actor.id}`, expiresAt })
      .returning();
    await recordAudit(tx, actor, { action: "token.create", target: `token:${id}`, detail: { name: input.name, role: input.role, expiresAt } });
    return r;
  });
  return { token, item: toDto(row) };
}

export async function revokeToken(ctx: Pick<ConsoleContext, "db">, actor: Actor, raw: unknown): Promise<TokenDto> {
  const { id } = parseInput(TokenIdInput, raw);
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx.select().from(apiTokens).where(eq(apiTokens.id, id));
    if (!row) throw ServiceError.field("NOT_FOUND", "id", `does not name a token (${id})`);
    if (row.revokedAt) return toDto(row);
    const [r] = await tx.update(apiTokens).set({ revokedAt: new Date().toISOString() }).where(eq(apiTokens.id, id)).returning();
    await recordAudit(tx, actor, { action: "token.revoke", target: `token:${id}`, detail: { name: row.name } });
    return toDto(r);
  });
}

const TOUCH_MS = 60_000;

/** The token behind an `Authorization: Bearer dcc_…` value, or null when unknown, revoked or expired. */
export async function authenticateToken(db: Db, presented: string): Promise<Pick<ApiToken, "id" | "role" | "name"> | null> {
  if (!TOKEN_SHAPE.test(presented)) return null;
  const now = new Date().toISOString();
  const [row] = await db
    .select()
    .from(apiTokens)
    .where(and(eq(apiTokens.tokenHash, sha256(presented)), isNull(apiTokens.revokedAt), or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, now))));
  if (!row) return null;
  if (!row.lastUsedAt || Date.parse(now) - Date.parse(row.lastUsedAt) > TOUCH_MS) {
    await db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, row.id));
  }
  return { id: row.id, role: row.role, name: row.name };
}
