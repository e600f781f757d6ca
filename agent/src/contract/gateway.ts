// The gateway's shared contract: what a host says about its gateway (facts), the access tickets
// the console signs for people (checked on the host with the console key the agent pins), the
// API-token check the agent asks the console over its connection, and where an app is reached.
import { createHash, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { AppNameSchema } from "./validation";

/** A DNS name the gateway serves apps under: `<app>.<domain>`. Lower case, at least two labels. */
export const GatewayDomainSchema = z
  .string()
  .min(3)
  .max(200)
  .regex(/^(?=.{3,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
    error: "must be a lower-case DNS name with at least two labels (e.g. apps.example.com)",
  });

export const GATEWAY_TLS_MODES = ["acme", "internal"] as const;
export type GatewayTlsMode = (typeof GATEWAY_TLS_MODES)[number];

/** Reported in host facts: the console builds app URLs and validates ticket returns from it. */
export const GatewayFactsSchema = z.object({
  domain: GatewayDomainSchema,
  httpsPort: z.number().int().min(1).max(65535),
  tls: z.enum(GATEWAY_TLS_MODES),
  /** Whether Caddy is up with the current configuration. */
  running: z.boolean(),
  /** Whether the agent's DOCKER-USER / INPUT rules are in place (null: not attempted). */
  firewall: z
    .object({ ok: z.boolean(), detail: z.string().max(500) })
    .nullable(),
  error: z.string().max(500).nullable().optional(),
});
export type GatewayFacts = z.infer<typeof GatewayFactsSchema>;

export { gatewayUrl } from "./gateway-url";

// ---------------------------------------------------------------------------------------------
// Access tickets: console → browser → agent. `base64url(json).base64url(sig)`, signed with the
// console's Ed25519 key under its own context string, valid for TICKET_TTL_MS.

export const TICKET_TTL_MS = 60_000;
/** The longest a gateway cookie from a ticket lasts (a person's); share links ask for less. */
export const SESSION_MAX_MS = 12 * 3600_000;
const CTX_TICKET = "dcc-gateway-ticket-v1\n";

export const TicketSchema = z.strictObject({
  v: z.literal(1),
  hostId: z.string().min(1).max(64),
  app: AppNameSchema,
  /** Who: `user:<id>` or `share:<id>` — recorded in the agent's log, never a secret. */
  sub: z.string().min(1).max(100).regex(/^(user|share):[A-Za-z0-9_-]+$/),
  /** The ticket's own expiry (ms since epoch). */
  exp: z.number().int(),
  /** How long the cookie made from it may last (ms since epoch). */
  until: z.number().int(),
  nonce: z.string().min(8).max(64).regex(/^[A-Za-z0-9_-]+$/),
});
export type Ticket = z.infer<typeof TicketSchema>;

export function signTicket(t: Ticket, key: KeyObject): string {
  const body = Buffer.from(JSON.stringify(TicketSchema.parse(t))).toString("base64url");
  const sig = sign(null, Buffer.from(CTX_TICKET + body), key).toString("base64url");
  return `${body}.${sig}`;
}

export type TicketCheck = { ok: true; ticket: Ticket } | { ok: false; reason: string };

/** Signature first, then shape, then host, app and expiry. */
export function verifyTicket(raw: string, key: KeyObject, expect: { hostId: string; app: string; now: number }): TicketCheck {
  const m = /^([A-Za-z0-9_-]{1,2000})\.([A-Za-z0-9_-]{1,200})$/.exec(raw);
  if (!m) return { ok: false, reason: "malformed ticket" };
  let good = false;
  try {
    good = verify(null, Buffer.from(CTX_TICKET + m[1]), key, Buffer.from(m[2], "base64url"));
  } catch {
    good = false;
  }
  if (!good) return { ok: false, reason: "ticket signature does not verify against the console key" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(m[1], "base64url").toString("utf8"));
  } catch {
    return { ok: false, reason: "malformed ticket" };
  }
  const r = TicketSchema.safeParse(parsed);
  if (!r.success) return { ok: false, reason: "malformed ticket" };
  const t = r.data;
  if (t.hostId !== expect.hostId) return { ok: false, reason: "ticket is for another host" };
  if (t.app !== expect.app) return { ok: false, reason: "ticket is for another app" };
  if (t.exp <= expect.now) return { ok: false, reason: "ticket expired" };
  if (t.until <= expect.now) return { ok: false, reason: "ticket expired" };
  return { ok: true, ticket: t };
}

// ---------------------------------------------------------------------------------------------
// API tokens at the gateway: the agent asks the console (by the token's SHA-256, never the token)
// and caches the answer for TOKEN_CACHE_MS, so a revoked token stops working within that time.

export const TOKEN_CACHE_MS = 30_000;
export const tokenHash = (token: string) => createHash("sha256").update(token).digest("hex");

export const GatewayTokenCheckSchema = z.strictObject({
  type: z.literal("gateway-token"),
  requestId: z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/),
  app: AppNameSchema,
  tokenHash: z.string().regex(/^[a-f0-9]{64}$/),
});
export const GatewayTokenAnswerSchema = z.strictObject({
  type: z.literal("gateway-token-answer"),
  requestId: z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/),
  ok: z.boolean(),
  /** `token:<id>` when ok, for the agent's log. */
  sub: z.string().max(100).optional(),
});
export type GatewayTokenCheck = z.infer<typeof GatewayTokenCheckSchema>;
export type GatewayTokenAnswer = z.infer<typeof GatewayTokenAnswerSchema>;
