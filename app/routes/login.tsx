import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { anonymousCsrf, anonymousCsrfOk, authenticate, csrfRefused, nextPath, sessionCookie } from "../auth.server";
import { signIn, userCount } from "../services/auth.server";

export const meta: MetaFunction = () => [{ title: "Sign in · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const next = nextPath(new URL(request.url).searchParams.get("next"));
  const { actor } = await authenticate(context.dcc, request, context.clientAddress);
  if (actor.kind !== "anonymous") throw redirect(next);
  if ((await userCount(context.dcc.db)) === 0) throw redirect("/setup");
  const csrf = anonymousCsrf(request, context);
  return json({ csrfToken: csrf.token, next }, { headers: csrf.setCookie ? { "set-cookie": csrf.setCookie } : {} });
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await request.formData();
  if (!anonymousCsrfOk(request, context, form.get("_csrf"))) throw csrfRefused();
  const { actor } = await authenticate(context.dcc, request, context.clientAddress);
  const result = await signIn(context.dcc, {
    username: form.get("username"),
    password: form.get("password"),
    address: context.clientAddress,
    userAgent: request.headers.get("user-agent"),
    // Whatever session the browser held ends here; the new one gets a fresh id (no fixation).
    previousSessionId: actor.sessionId,
  });
  if (!result.ok) {
    const username = typeof form.get("username") === "string" ? String(form.get("username")).slice(0, 64) : "";
    if (result.reason === "locked") {
      const at = result.retryAt ? new Date(result.retryAt).toISOString().slice(11, 16) : "later";
      return json({ error: `Too many failed sign-ins. Try again after ${at} UTC.`, username }, { status: 429 });
    }
    return json({ error: "Wrong user name or password.", username }, { status: 401 });
  }
  return redirect(nextPath(form.get("next")), { headers: { "set-cookie": sessionCookie(request, result.token) } });
}

export default function Login() {
  const { csrfToken, next } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  return (
    <section className="panel auth-card">
      <h1>Sign in</h1>
      <Form method="post" className="form">
        {result?.error ? (
          <p className="form-error" role="alert">
            {result.error}
          </p>
        ) : null}
        <input type="hidden" name="_csrf" value={csrfToken} />
        <input type="hidden" name="next" value={next} />
        <div className="field">
          <label htmlFor="f-username">User name</label>
          <input id="f-username" name="username" autoComplete="username" autoCapitalize="none" spellCheck={false} required defaultValue={result?.username ?? ""} autoFocus />
        </div>
        <div className="field">
          <label htmlFor="f-password">Password</label>
          <input id="f-password" name="password" type="password" autoComplete="current-password" required />
        </div>
        <div className="form-actions">
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </div>
      </Form>
    </section>
  );
}
