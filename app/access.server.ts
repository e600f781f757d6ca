// Who is calling, and may they? The one seam every loader, action, tRPC call and the live stream
// goes through. Machines send `Authorization: Bearer` (a `dcc_` API token or DCC_ADMIN_TOKEN);
// people carry an httpOnly session cookie. Cookie-authenticated writes must also prove they come
// from this console's own pages: a CSRF token (form field `_csrf` or header `X-CSRF-Token`)
// derived from the session, and no cross-site Origin / Sec-Fetch-Site.
import type { AppLoadContext } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { atLeast, type Role } from "../db/roles";
import type { Actor, ConsoleContext } from "./context.server";
import { csrfToken, csrfTokenValid, findSession, randomSecret, secretsEqual, SESSION_MAX_AGE_S } from "./services/auth.server";
import { authenticateToken } from "./services/tokens.server";

export type { Role };
export const hasRole = (actor: Actor, min: Role): boolean => actor.kind !== "anonymous" && atLeast(actor.role, min);

export const CSRF_FIELD = "_csrf";
export const CSRF_HEADER = "x-csrf-token";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
export const isSafeMethod = (request: Request): boolean => SAFE_METHODS.has(request.method.toUpperCase());

// ---------------------------------------------------------------------------------------------
// Cookies

/** Over HTTPS (directly, or as X-Forwarded-Proto says when DCC_TRUST_PROXY is on) cookies are Secure and __Host- prefixed. */
export const isSecureRequest = (request: Request): boolean => new URL(request.url).protocol === "https:";
const cookieName = (base: string, secure: boolean) => (secure ? `__Host-${base}` : base);

export function readCookie(request: Request, name: string): string | null {
  const header = request.headers.get("cookie");
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return null;
    }
  }
  return null;
}

function serializeCookie(name: string, value: string, secure: boolean, maxAge: number): string {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure ? "; Secure" : ""}`;
}

const readBoth = (request: Request, base: string) => readCookie(request, `__Host-${base}`) ?? readCookie(request, base);

export function sessionCookie(request: Request, token: string): string {
  const secure = isSecureRequest(request);
  return serializeCookie(cookieName("dcc_session", secure), token, secure, SESSION_MAX_AGE_S);
}

export function clearSessionCookie(request: Request): string {
  const secure = isSecureRequest(request);
  return serializeCookie(cookieName("dcc_session", secure), "", secure, 0);
}

/** The pending identity-provider sign-in (sealed state, nonce, PKCE verifier), for its 10 minutes. */
export function pendingOidcCookie(request: Request, value: string, maxAge: number): string {
  const secure = isSecureRequest(request);
  return serializeCookie(cookieName("dcc_oidc", secure), value, secure, maxAge);
}
export const readPendingOidcCookie = (request: Request): string | null => readBoth(request, "dcc_oidc");

/** This console's origin as people reach it: DCC_PUBLIC_URL when set, else the request's own. */
export function publicOrigin(request: Request, dcc: ConsoleContext): string {
  return dcc.config.publicUrl ? new URL(dcc.config.publicUrl).origin : new URL(request.url).origin;
}

// ---------------------------------------------------------------------------------------------
// Authentication

export interface Authenticated {
  actor: Actor;
  via: "bearer" | "session" | "none";
  /** A bearer value was sent but is not a valid token. */
  badBearer?: boolean;
}

const anonymous = (address?: string): Actor => ({ kind: "anonymous", id: "anonymous", role: "viewer", address });
const cache = new WeakMap<Request, Promise<Authenticated>>();
/** Requests whose CSRF proof was already checked (by requireUser or the tRPC route). */
const csrfChecked = new WeakSet<Request>();

export function authenticate(dcc: ConsoleContext, request: Request, address?: string): Promise<Authenticated> {
  let p = cache.get(request);
  if (!p) {
    p = resolveActor(dcc, request, address);
    cache.set(request, p);
  }
  return p;
}

async function resolveActor(dcc: ConsoleContext, request: Request, address?: string): Promise<Authenticated> {
  const auth = request.headers.get("authorization");
  if (auth !== null) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    const presented = m?.[1] ?? "";
    if (presented && dcc.config.adminToken && secretsEqual(presented, dcc.config.adminToken)) {
      return { actor: { kind: "token", id: "admin-env", role: "admin", address }, via: "bearer" };
    }
    const token = presented ? await authenticateToken(dcc.db, presented) : null;
    if (token) return { actor: { kind: "token", id: token.id, role: token.role, address }, via: "bearer" };
    // A wrong credential is a refusal, never a fall-back to the cookie.
    return { actor: anonymous(address), via: "none", badBearer: true };
  }
  const cookie = readBoth(request, "dcc_session");
  if (cookie) {
    const s = await findSession(dcc.db, cookie);
    if (s) {
      return {
        actor: { kind: "user", id: s.user.username, role: s.user.role, address, userId: s.user.id, sessionId: s.sessionId },
        via: "session",
      };
    }
  }
  return { actor: anonymous(address), via: "none" };
}

// ---------------------------------------------------------------------------------------------
// CSRF

/** The CSRF token of a signed-in session (what forms and X-CSRF-Token carry). */
export const sessionCsrfToken = (dcc: ConsoleContext, actor: Actor): string | null => (actor.sessionId ? csrfToken(dcc.sessionKey, `s:${actor.sessionId}`) : null);

/** Blocks requests a browser marks as coming from another origin (another app on the same host is same-site). */
export function fromOwnOrigin(request: Request, dcc: ConsoleContext): boolean {
  const site = request.headers.get("sec-fetch-site");
  if (site && site !== "same-origin" && site !== "none") return false;
  const origin = request.headers.get("origin");
  if (origin === null) return true;
  const own = new Set([new URL(request.url).origin]);
  if (dcc.config.publicUrl) own.add(new URL(dcc.config.publicUrl).origin);
  return own.has(origin);
}

async function presentedToken(request: Request, readBody: boolean): Promise<string | null> {
  const header = request.headers.get(CSRF_HEADER);
  if (header) return header;
  if (!readBody) return null;
  const type = request.headers.get("content-type") ?? "";
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(type)) return null;
  try {
    const v = (await request.clone().formData()).get(CSRF_FIELD);
    return typeof v === "string" ? v : null;
  } catch {
    return null;
  }
}

/** True when a cookie-authenticated write proves it came from this console's own page. */
export async function csrfOk(dcc: ConsoleContext, request: Request, actor: Actor, readBody = true): Promise<boolean> {
  if (!actor.sessionId || isSafeMethod(request)) return true;
  if (csrfChecked.has(request)) return true;
  const ok = fromOwnOrigin(request, dcc) && csrfTokenValid(dcc.sessionKey, `s:${actor.sessionId}`, await presentedToken(request, readBody));
  if (ok) csrfChecked.add(request);
  return ok;
}

export const csrfRefused = () => new Response("CSRF check failed: reload the page and try again", { status: 403, statusText: "Forbidden", headers: { "content-type": "text/plain; charset=utf-8" } });

// Before sign-in (the sign-in and set-up forms) the CSRF token is bound to a random cookie.

/** The anonymous CSRF token for the sign-in / set-up forms, and the cookie to set when the browser has none yet. */
export function anonymousCsrf(request: Request, context: AppLoadContext): { token: string; setCookie?: string } {
  const secure = isSecureRequest(request);
  let value = readBoth(request, "dcc_csrf");
  let setCookie: string | undefined;
  if (!value || !/^[A-Za-z0-9_-]{32,64}$/.test(value)) {
    value = randomSecret(32);
    setCookie = serializeCookie(cookieName("dcc_csrf", secure), value, secure, 24 * 3600);
  }
  return { token: csrfToken(context.dcc.sessionKey, `a:${value}`), setCookie };
}

export function anonymousCsrfOk(request: Request, context: AppLoadContext, presented: unknown): boolean {
  const value = readBoth(request, "dcc_csrf");
  return (
    fromOwnOrigin(request, context.dcc) &&
    typeof presented === "string" &&
    value !== null &&
    csrfTokenValid(context.dcc.sessionKey, `a:${value}`, presented)
  );
}

// ---------------------------------------------------------------------------------------------
// Guards

/**
 * The caller's identity (anonymous when nobody signed in). Does not check a role: use
 * requireUser / authorizeRequest for that. A cookie-authenticated write whose CSRF proof was not
 * checked yet must carry a valid X-CSRF-Token header, so an action that skips requireUser fails
 * closed instead of open.
 */
export async function requestActor(context: AppLoadContext, request: Request): Promise<Actor> {
  const { actor } = await authenticate(context.dcc, request, context.clientAddress);
  if (actor.sessionId && !isSafeMethod(request) && !(await csrfOk(context.dcc, request, actor, false))) throw csrfRefused();
  return actor;
}

function safeNext(request: Request): string {
  const url = new URL(request.url);
  const path = `${url.pathname}${url.search}`.replace(/[?&]_data=[^&]*/, "");
  return path.startsWith("/") && !path.startsWith("//") ? path : "/";
}

/**
 * For Remix loaders and actions: the signed-in actor with at least `role`. Unauthenticated page
 * requests are redirected to /login; a too-low role is a 403; a cookie-authenticated write
 * without a valid CSRF proof is a 403. Call it before reading the request body.
 */
export async function requireUser(request: Request, context: AppLoadContext, role: Role = "viewer"): Promise<Actor> {
  const { actor, badBearer } = await authenticate(context.dcc, request, context.clientAddress);
  if (actor.kind === "anonymous") {
    if (badBearer) throw new Response("Invalid or revoked API token", { status: 401, headers: { "www-authenticate": 'Bearer realm="dcc"' } });
    throw redirect(`/login?next=${encodeURIComponent(safeNext(request))}`);
  }
  if (!(await csrfOk(context.dcc, request, actor))) throw csrfRefused();
  if (!hasRole(actor, role)) throw new Response(`This needs the ${role} role; you are ${actor.role}.`, { status: 403, statusText: "Forbidden" });
  return actor;
}

/**
 * For streams and other non-page endpoints (e.g. an SSE resource route): the actor with at least
 * `role`, or a thrown 401 / 403 Response (never a redirect). CSRF is checked for writes.
 */
export async function authorizeRequest(request: Request, context: AppLoadContext, role: Role = "viewer"): Promise<Actor> {
  const { actor } = await authenticate(context.dcc, request, context.clientAddress);
  if (actor.kind === "anonymous") {
    throw new Response("Sign in or send an API token", { status: 401, headers: { "www-authenticate": 'Bearer realm="dcc"' } });
  }
  if (!(await csrfOk(context.dcc, request, actor))) throw csrfRefused();
  if (!hasRole(actor, role)) throw new Response(`This needs the ${role} role`, { status: 403 });
  return actor;
}

/** Where the guard sends people after sign-in: a local path only (no open redirect). */
export function nextPath(value: unknown): string {
  return typeof value === "string" && /^\/(?!\/)[^\s\\]*$/.test(value) && !value.startsWith("/login") ? value : "/";
}
