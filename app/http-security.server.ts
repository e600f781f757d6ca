// HTTP hardening for every response the console sends: security headers with a per-response CSP
// nonce (handed to Remix through the load context so its inline scripts run and nothing else
// inline does), a request body limit, and a cross-site write guard in front of Remix.
import { randomBytes } from "node:crypto";
import type { NextFunction, Request, Response } from "express";

export const BODY_LIMIT_BYTES = 1024 * 1024;

export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}'`,
    "style-src 'self'",
    // React writes style="" attributes for a few widths (progress bars); no <style> elements.
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** Sets the security headers and `res.locals.cspNonce` on every response. */
export function securityHeaders(req: Request, res: Response, next: NextFunction): void {
  const nonce = randomBytes(16).toString("base64");
  res.locals.cspNonce = nonce;
  res.setHeader("Content-Security-Policy", contentSecurityPolicy(nonce));
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
  res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
  res.setHeader("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()");
  if (req.secure) res.setHeader("Strict-Transport-Security", "max-age=31536000");
  // Pages and API answers carry user data: never cached (the static handlers set their own).
  res.setHeader("Cache-Control", "no-store");
  next();
}

/** Refuses bodies over the limit (413) before anything reads them; a body of unknown length is 411. */
export function bodyLimit(limit = BODY_LIMIT_BYTES) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const length = req.headers["content-length"];
    if (length !== undefined) {
      if (!/^\d+$/.test(length) || Number(length) > limit) {
        res.status(413).set("connection", "close").type("text/plain").send(`Request body larger than ${limit} bytes`);
        req.resume();
        return;
      }
    } else if (req.headers["transfer-encoding"]) {
      res.status(411).set("connection", "close").type("text/plain").send("Send a Content-Length");
      req.resume();
      return;
    }
    next();
  };
}

/**
 * A browser write from another origin that carries our session cookie is refused here already,
 * whatever route it targets (another app on the same host counts as same-site, so SameSite=Lax
 * alone would let it through). Bearer calls carry no cookie and pass; the CSRF token check in
 * app/access.server.ts stays the primary defence.
 */
export function crossSiteWriteGuard(publicUrl?: string) {
  const publicOrigin = publicUrl ? new URL(publicUrl).origin : null;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (["GET", "HEAD", "OPTIONS"].includes(req.method) || !req.headers.cookie || req.headers.authorization) return next();
    const site = req.headers["sec-fetch-site"];
    const origin = req.headers.origin;
    // The same origin Remix builds its request URL from (trust-proxy aware).
    const port = /:(\d+)$/.exec(req.get("x-forwarded-host") ?? req.get("host") ?? "")?.[1];
    const own = `${req.protocol}://${req.hostname}${port ? `:${port}` : ""}`;
    const crossSite = (site !== undefined && site !== "same-origin" && site !== "none") || (origin !== undefined && origin !== own && origin !== publicOrigin);
    if (crossSite) {
      res.status(403).type("text/plain").send("Cross-site request refused");
      req.resume();
      return;
    }
    next();
  };
}
