// A browser that reached an app's gateway without access lands here: a signed-in person (viewer
// or above; others go through /login first) or the holder of that app's share link gets a
// short-lived ticket and is sent back to the app, which turns it into its own cookie.
import type { LoaderFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { requireUser } from "../access.server";
import { ServiceError, httpStatusOf } from "../services/errors";
import { SESSION_MAX_MS } from "../../agent/src/contract/gateway";
import { actorSub, redeemShare, shareCookie, ticketRedirect } from "../services/gateway.server";

export async function loader({ request, context }: LoaderFunctionArgs) {
  const url = new URL(request.url);
  const input = { app: url.searchParams.get("app") ?? undefined, return: url.searchParams.get("return") ?? undefined };
  try {
    const token = input.app ? shareCookie(request, input.app) : null;
    const share = token ? await redeemShare(context.dcc, token) : null;
    const who =
      share && share.app === input.app
        ? { sub: `share:${share.id}`, until: share.until }
        : { sub: actorSub(await requireUser(request, context, "viewer")), until: Date.now() + SESSION_MAX_MS };
    return redirect(await ticketRedirect(context.dcc, who, input), { headers: { "cache-control": "no-store" } });
  } catch (e) {
    if (e instanceof ServiceError) return new Response(`${e.message}\n`, { status: httpStatusOf(e), headers: { "content-type": "text/plain; charset=utf-8" } });
    throw e;
  }
}
