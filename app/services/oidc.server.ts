// Sign-in with an OpenID Connect provider (openid-client): authorization code with PKCE (S256),
// state and nonce. The provider's discovery document is read once (and again after a failure);
// the ID token's signature (against the provider's JWKS), issuer, audience, expiry and nonce are
// checked before anyone is signed in. The pending sign-in (state, nonce, PKCE verifier, where to
// go next) travels in a short-lived cookie sealed with a key derived from the session secret, so
// the console keeps no per-request state.
import { createHash } from "node:crypto";
import * as oidc from "openid-client";
import { z } from "zod";
import type { OidcConfig } from "../config.server";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { signInWithIdentity, type OidcSignInResult } from "./oidc-users.server";
import { open, seal } from "./secret-box.server";

export const OIDC_PENDING_TTL_S = 600;
const DISCOVERY_TIMEOUT_S = 10;

const configurations = new Map<string, Promise<oidc.Configuration>>();

/** The provider's configuration from its discovery document (cached; a failed discovery is retried next time). */
export function providerConfiguration(cfg: OidcConfig): Promise<oidc.Configuration> {
  const key = `${cfg.issuer}\0${cfg.clientId}`;
  let p = configurations.get(key);
  if (!p) {
    p = (async () => {
      const auth = cfg.clientSecret ? oidc.ClientSecretBasic(cfg.clientSecret) : oidc.None();
      const config = await oidc.discovery(new URL(cfg.issuer), cfg.clientId, cfg.clientSecret, auth, {
        execute: cfg.allowInsecure ? [oidc.allowInsecureRequests] : [],
        timeout: DISCOVERY_TIMEOUT_S,
      });
      // Verify the ID token's signature against the provider's published keys (openid-client
      // otherwise trusts the TLS channel of the token endpoint alone).
      oidc.enableNonRepudiationChecks(config);
      return config;
    })();
    configurations.set(key, p);
    p.catch(() => configurations.delete(key));
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// The pending sign-in, sealed into a cookie

const PendingSchema = z.strictObject({
  state: z.string().min(16).max(200),
  nonce: z.string().min(16).max(200),
  verifier: z.string().min(43).max(128),
  next: z.string().max(2000),
  exp: z.number().int(),
});
export type OidcPending = z.infer<typeof PendingSchema>;

const pendingKey = (sessionKey: Buffer) => createHash("sha256").update("dcc-oidc-pending\0").update(sessionKey).digest();

export function sealPending(sessionKey: Buffer, p: OidcPending): string {
  return seal(pendingKey(sessionKey), "oidc-pending", JSON.stringify(p));
}

export function openPending(sessionKey: Buffer, value: string | null, now = Date.now()): OidcPending | null {
  if (!value || value.length > 4000) return null;
  const text = open(pendingKey(sessionKey), "oidc-pending", value);
  if (!text) return null;
  try {
    const p = PendingSchema.parse(JSON.parse(text));
    return p.exp * 1000 > now ? p : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Start and finish

/** Where the provider is sent and the sealed pending sign-in for the cookie. */
export async function beginOidcSignIn(ctx: Pick<ConsoleContext, "config" | "sessionKey">, opts: { redirectUri: string; next: string }) {
  const cfg = requireOidc(ctx);
  const config = await providerConfiguration(cfg);
  const verifier = oidc.randomPKCECodeVerifier();
  const pending: OidcPending = {
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    verifier,
    next: opts.next,
    exp: Math.floor(Date.now() / 1000) + OIDC_PENDING_TTL_S,
  };
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: opts.redirectUri,
    scope: cfg.scopes,
    response_type: "code",
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state: pending.state,
    nonce: pending.nonce,
  });
  return { url: url.href, cookieValue: sealPending(ctx.sessionKey, pending) };
}

export interface OidcCallbackInput {
  /** The callback's query string as received. */
  search: string;
  /** The pending-sign-in cookie's value. */
  pending: string | null;
  redirectUri: string;
  address?: string;
  userAgent?: string | null;
  previousSessionId?: string;
}

/** Groups from a claim that is a list of strings (or one string); anything else is no groups. */
export function groupsOf(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === "string" && g.length <= 500).slice(0, 1000);
  return [];
}

export function roleForGroups(cfg: Pick<OidcConfig, "adminGroups" | "operatorGroups">, groups: string[]): Actor["role"] {
  if (groups.some((g) => cfg.adminGroups.includes(g))) return "admin";
  if (groups.some((g) => cfg.operatorGroups.includes(g))) return "operator";
  return "viewer";
}

/** Checks the provider's answer and signs the person in, or says why not (audited either way). */
export async function completeOidcSignIn(ctx: ConsoleContext, input: OidcCallbackInput): Promise<OidcSignInResult> {
  const cfg = requireOidc(ctx);
  const anon: Actor = { kind: "anonymous", id: "oidc", role: "viewer", address: input.address };
  const refuse = async (reason: "expired" | "refused", detail: string): Promise<OidcSignInResult> => {
    await recordAudit(ctx.db, anon, { action: "auth.sign_in", target: "oidc", outcome: "denied", detail: { method: "oidc", reason: detail.slice(0, 300) } });
    return { ok: false, reason, message: detail };
  };

  const pending = openPending(ctx.sessionKey, input.pending);
  if (!pending) return refuse("expired", "no pending sign-in in this browser (expired, or started elsewhere)");

  let claims: oidc.IDToken | undefined;
  let accessToken: string;
  let config: oidc.Configuration;
  try {
    config = await providerConfiguration(cfg);
    const current = new URL(input.redirectUri);
    current.search = input.search;
    const tokens = await oidc.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    claims = tokens.claims();
    accessToken = tokens.access_token;
  } catch (e) {
    return refuse("refused", `the provider's answer was refused: ${describe(e)}`);
  }
  if (!claims) return refuse("refused", "the provider sent no ID token");

  let groupsClaim: unknown = claims[cfg.groupsClaim];
  if (groupsClaim === undefined && config.serverMetadata().userinfo_endpoint) {
    try {
      const info = await oidc.fetchUserInfo(config, accessToken, claims.sub);
      groupsClaim = info[cfg.groupsClaim];
    } catch (e) {
      return refuse("refused", `could not read the user's groups: ${describe(e)}`);
    }
  }
  const groups = groupsOf(groupsClaim);
  return signInWithIdentity(ctx, {
    issuer: claims.iss,
    subject: claims.sub,
    email: typeof claims.email === "string" ? claims.email : null,
    names: [claims.preferred_username, claims.email, claims.name, claims.nickname].filter((n): n is string => typeof n === "string"),
    groups,
    role: roleForGroups(cfg, groups),
    address: input.address,
    userAgent: input.userAgent,
    previousSessionId: input.previousSessionId,
    next: pending.next,
  });
}

/** The provider's end-session URL (RP-initiated logout) when it offers one; null otherwise. */
export async function endSessionUrl(ctx: Pick<ConsoleContext, "config">, postLogoutRedirectUri: string): Promise<string | null> {
  const cfg = ctx.config.oidc;
  if (!cfg) return null;
  try {
    const config = await providerConfiguration(cfg);
    if (!config.serverMetadata().end_session_endpoint) return null;
    return oidc.buildEndSessionUrl(config, { client_id: cfg.clientId, post_logout_redirect_uri: postLogoutRedirectUri }).href;
  } catch {
    return null;
  }
}

function requireOidc(ctx: Pick<ConsoleContext, "config">): OidcConfig {
  if (!ctx.config.oidc) throw new Error("no identity provider is configured (DCC_OIDC_ISSUER)");
  return ctx.config.oidc;
}

function describe(e: unknown): string {
  const err = e as { message?: string; code?: string; error?: string; error_description?: string; cause?: { message?: string; code?: string } };
  const cause = err.cause && typeof err.cause === "object" ? err.cause.message : undefined;
  const parts = [err.code, err.error, err.error_description ?? err.message, cause].filter(Boolean);
  return parts.join(": ").slice(0, 300) || "unknown error";
}
