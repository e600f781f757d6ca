import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { requestActor } from "../auth.server";
import { appRouter } from "../trpc/root";

function handle({ request, context }: LoaderFunctionArgs | ActionFunctionArgs) {
  return fetchRequestHandler({
    endpoint: "/api/trpc",
    req: request,
    router: appRouter,
    createContext: async () => ({ ...context.dcc, actor: await requestActor(context, request), req: request }),
  });
}

export const loader = handle;
export const action = handle;
