// A share link: a person without an account opens one app until the link expires or is revoked.
// The console keeps the link in a cookie for /gateway (so the app can come back for new tickets)
// and sends the browser on with a ticket whose cookie lasts at most 15 minutes.
import type { LoaderFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { isSecureRequest } from "../access.server";
import { ServiceError, httpStatusOf } from "../services/errors";
import { redeemShare, shareCookieHeader, ticketRedirect } from "../services/gateway.server";

export async function loader({ request, context, params }: LoaderFunctionArgs) {
  const share = await redeemShare(context.dcc, params.token ?? "");
  if (!share) return new Response("This share link has expired or was revoked.\n", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } });
  try {
    const to = await ticketRedirect(context.dcc, { sub: `share:${share.id}`, until: share.until }, { app: share.app });
    const headers = new Headers({ "cache-control": "no-store", "referrer-policy": "no-referrer" });
    headers.append("set-cookie", shareCookieHeader(share.app, params.token!, share.expires, isSecureRequest(request)));
    return redirect(to, { headers });
  } catch (e) {
    if (e instanceof ServiceError) return new Response(`${e.message}\n`, { status: httpStatusOf(e), headers: { "content-type": "text/plain; charset=utf-8" } });
    throw e;
  }
}
