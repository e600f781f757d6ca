// Who is calling. Until sign-in exists every caller acts as the local operator console; this is
// the one place the authentication layer replaces.
import type { AppLoadContext } from "@remix-run/node";
import type { Actor } from "./context.server";

export async function requestActor(context: AppLoadContext, _request: Request): Promise<Actor> {
  return { kind: "anonymous", id: "console", role: "admin", address: context.clientAddress };
}
