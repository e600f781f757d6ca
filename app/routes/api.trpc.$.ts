import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { authenticate, csrfOk, hasRole } from "../auth.server";
import type { ProcedureMeta } from "../trpc/init";
import { appRouter } from "../trpc/root";

function trpcError(status: 401 | 403, code: "UNAUTHORIZED" | "FORBIDDEN", message: string): Response {
  return Response.json({ error: { message, code: status === 401 ? -32001 : -32003, data: { code, httpStatus: status } } }, { status });
}

const procedures = appRouter._def.procedures as unknown as Record<string, { _def: { type: string; meta?: ProcedureMeta } }>;

async function handle({ request, context }: LoaderFunctionArgs | ActionFunctionArgs) {
  const { actor } = await authenticate(context.dcc, request, context.clientAddress);
  // Bearer calls carry no cookie and need no CSRF token; session writes do.
  if (!(await csrfOk(context.dcc, request, actor, false))) {
    return trpcError(403, "FORBIDDEN", "CSRF check failed: send the X-CSRF-Token header (auth.me gives it) from the console's own pages");
  }
  // A stream answers 200 before its procedure runs; refuse with a real status first.
  const path = decodeURIComponent(new URL(request.url).pathname.replace(/^\/api\/trpc\/?/, ""));
  const proc = procedures[path];
  if (proc?._def.type === "subscription") {
    if (actor.kind === "anonymous") return trpcError(401, "UNAUTHORIZED", "sign in or send an API token");
    const min = proc._def.meta?.minRole;
    if (!min || !hasRole(actor, min)) return trpcError(403, "FORBIDDEN", `requires the ${min ?? "admin"} role`);
  }
  return fetchRequestHandler({
    endpoint: "/api/trpc",
    req: request,
    router: appRouter,
    createContext: () => ({ ...context.dcc, actor, req: request }),
  });
}

export const loader = handle;
export const action = handle;
