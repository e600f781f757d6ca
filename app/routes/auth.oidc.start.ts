import type { LoaderFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { nextPath, pendingOidcCookie, publicOrigin } from "../access.server";
import { beginOidcSignIn, OIDC_PENDING_TTL_S } from "../services/oidc.server";

// GET /auth/oidc/start?next=/somewhere → the provider's authorization endpoint, with the pending
// sign-in sealed into a cookie that the callback needs (so a callback started elsewhere fails).
export async function loader({ request, context }: LoaderFunctionArgs) {
  if (!context.dcc.config.oidc) throw new Response("No identity provider is configured", { status: 404 });
  const next = nextPath(new URL(request.url).searchParams.get("next"));
  try {
    const { url, cookieValue } = await beginOidcSignIn(context.dcc, { redirectUri: `${publicOrigin(request, context.dcc)}/auth/oidc/callback`, next });
    return redirect(url, { headers: { "set-cookie": pendingOidcCookie(request, cookieValue, OIDC_PENDING_TTL_S) } });
  } catch (e) {
    console.error(JSON.stringify({ t: new Date().toISOString(), level: "error", msg: "identity provider unreachable", error: (e as Error).message }));
    return redirect("/login?oidc_error=unavailable");
  }
}
