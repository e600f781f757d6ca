import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { authenticate, csrfOk, hasRole } from "../access.server";
import { PROCEDURE_ALIASES } from "../trpc/aliases";
import { appRouter, STREAMS } from "../trpc/root";

function trpcError(status: 401 | 403, code: "UNAUTHORIZED" | "FORBIDDEN", message: string): Response {
  return Response.json({ error: { message, code: status === 401 ? -32001 : -32003, data: { code, httpStatus: status } } }, { status });
}

/** The URL with aliased procedure names replaced (the same string when none is used). */
export function aliasedUrl(href: string): string {
  const url = new URL(href);
  const prefix = "/api/trpc/";
  if (!url.pathname.startsWith(prefix)) return href;
  let names: string[];
  try {
    names = decodeURIComponent(url.pathname.slice(prefix.length)).split(",");
  } catch {
    return href;
  }
  if (!names.some((n) => Object.hasOwn(PROCEDURE_ALIASES, n))) return href;
  url.pathname = prefix + names.map((n) => (Object.hasOwn(PROCEDURE_ALIASES, n) ? PROCEDURE_ALIASES[n] : n)).join(",");
  return url.href;
}

/**
 * The same request addressed to the aliased procedure names (the body is read once and passed
 * on). Requests mounted from Express (app/api-mount.server.ts) arrive with their URL already
 * aliased, so they are passed through as they are.
 */
async function withAliases(request: Request): Promise<Request> {
  const href = aliasedUrl(request.url);
  if (href === request.url) return request;
  const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
  return new Request(href, { method: request.method, headers: request.headers, body, signal: request.signal });
}

async function handle({ request, context }: LoaderFunctionArgs | ActionFunctionArgs) {
  const { actor } = await authenticate(context.dcc, request, context.clientAddress);
  // Bearer calls carry no cookie and need no CSRF token; session writes do.
  if (!(await csrfOk(context.dcc, request, actor, false))) {
    return trpcError(403, "FORBIDDEN", "CSRF check failed: send the X-CSRF-Token header (auth.me gives it) from the console's own pages");
  }
  // The API speaks JSON only. tRPC would also hand form data or a raw byte stream to a procedure
  // as its input; no caller here sends them, so they are refused as what they are.
  const type = request.headers.get("content-type");
  if (request.method === "POST" && type !== null && !/^application\/json\s*(;|$)/i.test(type)) {
    return Response.json(
      { error: { message: `Unsupported content-type "${type.slice(0, 100)}": send application/json`, code: -32015, data: { code: "UNSUPPORTED_MEDIA_TYPE", httpStatus: 415 } } },
      { status: 415 },
    );
  }
  // A stream answers 200 before its procedure runs; refuse with a real status first.
  const path = decodeURIComponent(new URL(request.url).pathname.replace(/^\/api\/trpc\/?/, ""));
  const stream = Object.hasOwn(STREAMS, path) ? STREAMS[path] : undefined;
  if (stream) {
    if (actor.kind === "anonymous") return trpcError(401, "UNAUTHORIZED", "sign in or send an API token");
    if (!hasRole(actor, stream)) return trpcError(403, "FORBIDDEN", `requires the ${stream} role`);
  }
  const response = await fetchRequestHandler({
    endpoint: "/api/trpc",
    req: await withAliases(request),
    router: appRouter,
    createContext: () => ({ ...context.dcc, actor, req: request }),
  });
  return stream ? cancelWhenClosed(response, context.closed) : response;
}

/**
 * Ends a stream's subscription when its client goes away: cancelling the body is what makes tRPC
 * abort the procedure's signal and return its generator (so a log follow or an event listener is
 * released at once, not left writing into a closed socket).
 */
function cancelWhenClosed(response: Response, closed: AbortSignal | undefined): Response {
  if (!closed || !response.body) return response;
  const reader = response.body.getReader();
  const onClose = () => void reader.cancel("client disconnected").catch(() => {});
  if (closed.aborted) onClose();
  else closed.addEventListener("abort", onClose, { once: true });
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
      if (chunk.done) {
        closed.removeEventListener("abort", onClose);
        controller.close();
      } else controller.enqueue(chunk.value);
    },
    cancel(reason) {
      closed.removeEventListener("abort", onClose);
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}

export const loader = handle;
export const action = handle;
