import type { LoaderFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { authenticate, nextPath, pendingOidcCookie, publicOrigin, readPendingOidcCookie, sessionCookie } from "../access.server";
import { completeOidcSignIn } from "../services/oidc.server";

// GET /auth/oidc/callback?code=…&state=… — the provider sends the browser back here. The pending
// sign-in cookie is spent whatever the outcome, so a callback URL cannot be replayed.
export async function loader({ request, context }: LoaderFunctionArgs) {
  if (!context.dcc.config.oidc) throw new Response("No identity provider is configured", { status: 404 });
  const url = new URL(request.url);
  if (url.search.length > 8000) throw new Response("Callback too long", { status: 414 });
  const { actor } = await authenticate(context.dcc, request, context.clientAddress);
  const result = await completeOidcSignIn(context.dcc, {
    search: url.search,
    pending: readPendingOidcCookie(request),
    redirectUri: `${publicOrigin(request, context.dcc)}/auth/oidc/callback`,
    address: context.clientAddress,
    userAgent: request.headers.get("user-agent"),
    previousSessionId: actor.sessionId,
  });
  const headers = new Headers({ "set-cookie": pendingOidcCookie(request, "", 0) });
  if (!result.ok) return redirect(`/login?oidc_error=${result.reason}`, { headers });
  headers.append("set-cookie", sessionCookie(request, result.token));
  return redirect(nextPath(result.next), { headers });
}
