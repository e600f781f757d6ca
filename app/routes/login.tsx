import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { anonymousCsrf, anonymousCsrfOk, authenticate, csrfRefused, nextPath, sessionCookie } from "../access.server";
import { Field } from "../components/Field";
import { signIn, userCount } from "../services/auth.server";

export const meta: MetaFunction = () => [{ title: "Sign in · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const next = nextPath(new URL(request.url).searchParams.get("next"));
  const { actor } = await authenticate(context.dcc, request, context.clientAddress);
  if (actor.kind !== "anonymous") throw redirect(next);
  const { passwordLogin, oidc } = context.dcc.config;
  const firstRun = (await userCount(context.dcc.db)) === 0;
  // First run with password sign-in: /setup, unless a provider can bring the first admin instead.
  if (firstRun && passwordLogin && !oidc) throw redirect("/setup");
  const csrf = anonymousCsrf(request, context);
  const code = new URL(request.url).searchParams.get("oidc_error");
  return json(
    {
      csrfToken: csrf.token,
      next,
      passwordLogin,
      provider: oidc ? { name: oidc.name, href: `/auth/oidc/start?next=${encodeURIComponent(next)}` } : null,
      setupLink: firstRun && passwordLogin,
      oidcError: code ? (OIDC_ERRORS[code] ?? OIDC_ERRORS.refused) : null,
    },
    { headers: csrf.setCookie ? { "set-cookie": csrf.setCookie } : {} },
  );
}

const OIDC_ERRORS: Record<string, string> = {
  expired: "The sign-in with the identity provider expired or was started in another browser. Try again.",
  refused: "The identity provider's answer could not be verified, so nobody was signed in.",
  disabled: "Your account is disabled in this console.",
  "no-admin": "This console has no admin yet: the first person to sign in must be in an admin group.",
  unavailable: "The identity provider cannot be reached right now.",
};

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await request.formData();
  // A refusal needs no CSRF proof: with password sign-in off nothing here can sign anyone in.
  if (!context.dcc.config.passwordLogin) {
    await signIn(context.dcc, { username: form.get("username"), password: "", address: context.clientAddress });
    return json({ error: "Password sign-in is off: use the identity provider.", username: "" }, { status: 403 });
  }
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
  const { csrfToken, next, passwordLogin, provider, setupLink, oidcError } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const error = result?.error ?? oidcError;
  return (
    <section className="panel auth-card">
      <h1>Sign in</h1>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      {provider ? (
        <p className="form-actions">
          {/* A full page load: the provider's sign-in page is another site. */}
          <a className={passwordLogin ? "button" : "button primary"} href={provider.href} data-testid="oidc-sign-in">
            {`Sign in with ${provider.name}`}
          </a>
        </p>
      ) : null}
      {setupLink ? (
        <p className="hint">
          First run? <a href="/setup">Set up the first admin</a> with the set-up token from the console&apos;s log.
        </p>
      ) : null}
      {passwordLogin ? (
        <Form method="post" className="form">
          <input type="hidden" name="_csrf" value={csrfToken} />
          <input type="hidden" name="next" value={next} />
          <Field name="username" label="User name">
            {(p) => <input {...p} autoComplete="username" autoCapitalize="none" spellCheck={false} required defaultValue={result?.username ?? ""} autoFocus />}
          </Field>
          <Field name="password" label="Password">
            {(p) => <input {...p} type="password" autoComplete="current-password" required />}
          </Field>
          <div className="form-actions">
            <button type="submit" className="button primary" disabled={busy}>
              {busy ? "Signing in…" : "Sign in"}
            </button>
          </div>
        </Form>
      ) : null}
    </section>
  );
}
