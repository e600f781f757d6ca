// The API route (/api/trpc) served straight from Express: the same route module Remix would run
// (taken from the build, so there is one copy of every module), without the page router's route
// matching and data-request handling on each call. Requests are converted to Fetch requests with
// their whole body (bodyLimit has already bounded it by Content-Length); answers are written back
// in one piece, except event streams, which are piped as they are produced.
import type { IncomingHttpHeaders } from "node:http";
import { writeReadableStreamToWritable, type AppLoadContext, type LoaderFunction, type ServerBuild } from "@remix-run/node";
import type { NextFunction, Request as ExpressRequest, Response as ExpressResponse } from "express";

export const API_ROUTE_ID = "routes/api.trpc.$";

function fetchHeaders(incoming: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  return headers;
}

async function readBody(req: ExpressRequest): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Express middleware serving the API route of `build`; `loadContext` is the one Remix pages get. */
export function apiMount(build: ServerBuild, loadContext: (req: ExpressRequest, res: ExpressResponse) => AppLoadContext) {
  const api = build.routes[API_ROUTE_ID]?.module as { loader?: LoaderFunction; action?: LoaderFunction; aliasedUrl?: (href: string) => string } | undefined;
  if (!api?.loader || !api.action) throw new Error(`the build has no API route (${API_ROUTE_ID})`);
  const { loader, action } = api;
  // Procedure names tRPC cannot use as keys (apps.apply) are rewritten before the request is built.
  const aliased = api.aliasedUrl ?? ((href: string) => href);
  return async (req: ExpressRequest, res: ExpressResponse, next: NextFunction): Promise<void> => {
    try {
      const controller = new AbortController();
      res.once("close", () => {
        if (!res.writableFinished) controller.abort();
      });
      const read = req.method === "GET" || req.method === "HEAD";
      // The host as Express resolves it (it honours "trust proxy"), as Remix builds its URL.
      const url = aliased(`${req.protocol}://${req.get("host") ?? "localhost"}${req.originalUrl}`);
      const request = new Request(url, {
        method: req.method,
        headers: fetchHeaders(req.headers),
        body: read ? undefined : new Uint8Array(await readBody(req)),
        signal: controller.signal,
      });
      const response = (await (read ? loader : action)({ request, context: loadContext(req, res), params: {} })) as Response;
      res.statusMessage = response.statusText;
      res.status(response.status);
      for (const [name, value] of response.headers.entries()) res.append(name, value);
      if (!response.body) {
        res.end();
      } else if (/text\/event-stream/i.test(response.headers.get("content-type") ?? "")) {
        res.flushHeaders();
        await writeReadableStreamToWritable(response.body, res);
      } else {
        res.end(req.method === "HEAD" ? undefined : Buffer.from(await response.arrayBuffer()));
      }
    } catch (e) {
      next(e);
    }
  };
}
