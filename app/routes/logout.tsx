import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { clearSessionCookie, publicOrigin, requireUser } from "../access.server";
import { signOut, signOutEverywhere } from "../services/auth.server";
import { endSessionUrl } from "../services/oidc.server";
import { hasIdentity } from "../services/oidc-users.server";

// Signing out is a POST with the CSRF token (a GET link could be triggered by any page).
export async function loader() {
  return redirect("/");
}

export async function action({ request, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "viewer");
  const form = await request.formData();
  if (actor.sessionId) {
    if (form.get("intent") === "everywhere") await signOutEverywhere(context.dcc, actor);
    else await signOut(context.dcc, actor);
  }
  // Someone who came through the identity provider is signed out there too, when it offers that.
  const provider = actor.userId && (await hasIdentity(context.dcc, actor.userId)) ? await endSessionUrl(context.dcc, `${publicOrigin(request, context.dcc)}/login`) : null;
  return redirect(provider ?? "/login", { headers: { "set-cookie": clearSessionCookie(request) } });
}
