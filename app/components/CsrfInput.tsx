import { useRouteLoaderData } from "@remix-run/react";

/** The hidden `_csrf` field every cookie-authenticated form must send (the root loader supplies the session's token). */
export function CsrfInput({ token }: { token?: string | null }) {
  const root = useRouteLoaderData<{ csrfToken: string | null }>("root");
  const value = token ?? root?.csrfToken ?? "";
  return <input type="hidden" name="_csrf" value={value} />;
}

/** The same token for fetch() writes to /api/trpc (`X-CSRF-Token` header). */
export function useCsrfToken(): string | null {
  return useRouteLoaderData<{ csrfToken: string | null }>("root")?.csrfToken ?? null;
}
