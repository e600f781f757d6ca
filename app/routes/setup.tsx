import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { anonymousCsrf, anonymousCsrfOk, csrfRefused, sessionCookie } from "../access.server";
import { Field } from "../components/Field";
import { completeSetup, userCount } from "../services/auth.server";
import { ServiceError } from "../services/errors";

export const meta: MetaFunction = () => [{ title: "Set up · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  // Without password sign-in the first admin comes through the identity provider.
  if (!context.dcc.config.passwordLogin) throw redirect("/login");
  // Set-up exists only until the first admin does; afterwards this page refuses.
  if ((await userCount(context.dcc.db)) > 0) return json({ done: true as const, csrfToken: "" }, { status: 403 });
  const csrf = anonymousCsrf(request, context);
  return json({ done: false as const, csrfToken: csrf.token }, { headers: csrf.setCookie ? { "set-cookie": csrf.setCookie } : {} });
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await request.formData();
  if (!anonymousCsrfOk(request, context, form.get("_csrf"))) throw csrfRefused();
  const username = String(form.get("username") ?? "");
  const password = String(form.get("password") ?? "");
  if (password !== String(form.get("confirm") ?? "")) {
    return json({ error: "Please fix the fields marked below.", fields: { confirm: "does not match the password" } as Record<string, string>, username }, { status: 400 });
  }
  try {
    const r = await completeSetup(
      context.dcc,
      { setupToken: String(form.get("setupToken") ?? ""), username, password },
      { address: context.clientAddress, userAgent: request.headers.get("user-agent") },
    );
    return redirect("/", { headers: { "set-cookie": sessionCookie(request, r.token) } });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    const status = e.code === "FORBIDDEN" ? 403 : 400;
    return json({ error: Object.keys(e.fields).length ? "Please fix the fields marked below." : e.message, fields: e.fields, username }, { status });
  }
}

export default function Setup() {
  const { done, csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  if (done) {
    return (
      <section className="panel auth-card">
        <h1>Already set up</h1>
        <p>This console has an admin already. Set-up cannot be run again.</p>
        <Link to="/login" className="button primary">Sign in</Link>
      </section>
    );
  }
  const errors: Record<string, string> = result?.fields ?? {};
  const field = (name: string, label: string, props: React.InputHTMLAttributes<HTMLInputElement>, hint?: string) => (
    <Field name={name} label={label} error={errors[name]} hint={hint}>
      {(p) => <input {...p} required {...props} />}
    </Field>
  );
  return (
    <section className="panel auth-card">
      <h1>Set up the console</h1>
      <p className="notice">
        Create the first admin. You need the one-time set-up token the console printed in its log when it started.
      </p>
      <Form method="post" className="form">
        {result?.error ? (
          <p className="form-error" role="alert">
            {result.error}
          </p>
        ) : null}
        <input type="hidden" name="_csrf" value={csrfToken} />
        {field("setupToken", "Set-up token", { autoComplete: "off", spellCheck: false, type: "password" }, "From the log line “first run: open /setup …”.")}
        {field("username", "Admin user name", { autoComplete: "username", autoCapitalize: "none", spellCheck: false, defaultValue: result?.username ?? "admin" })}
        {field("password", "Password", { type: "password", autoComplete: "new-password", minLength: 12 }, "At least 12 characters.")}
        {field("confirm", "Repeat password", { type: "password", autoComplete: "new-password" })}
        <div className="form-actions">
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? "Creating…" : "Create admin"}
          </button>
        </div>
      </Form>
    </section>
  );
}
