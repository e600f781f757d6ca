import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { requireUser } from "../access.server";
import { RowAction } from "../components/RowAction";
import { CsrfInput } from "../components/CsrfInput";
import { httpStatusOf, ServiceError } from "../services/errors";
import { createToken, listTokens, revokeToken } from "../services/tokens.server";
import { Field } from "../components/Field";
import { DataTable } from "../components/DataTable";

export const meta: MetaFunction = () => [{ title: "API tokens · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "admin");
  return { tokens: await listTokens(context.dcc) };
}

/** Form dates are days from now; the service takes an exact instant. */
function expiryFrom(days: FormDataEntryValue | null): string | undefined | null {
  if (typeof days !== "string" || days === "") return undefined;
  if (!/^\d{1,4}$/.test(days) || Number(days) < 1) return null;
  return new Date(Date.now() + Number(days) * 86_400_000).toISOString();
}

export async function action({ request, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "admin");
  const form = await request.formData();
  try {
    if (form.get("intent") === "revoke") {
      const t = await revokeToken(context.dcc, actor, { id: String(form.get("id") ?? "") });
      return json({ intent: "revoke" as const, revoked: t.name, created: null, fields: {} as Record<string, string>, error: null });
    }
    const expiresAt = expiryFrom(form.get("expiresInDays"));
    if (expiresAt === null) throw ServiceError.field("BAD_REQUEST", "expiresInDays", "must be a whole number of days, 1 or more");
    const r = await createToken(context.dcc, actor, { name: String(form.get("name") ?? ""), role: String(form.get("role") ?? ""), ...(expiresAt ? { expiresAt } : {}) });
    // The token is in this one response only; it is never shown again.
    return json({ intent: "create" as const, revoked: null, created: { token: r.token, name: r.item.name, role: r.item.role }, fields: {} as Record<string, string>, error: null });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return json({ intent: "error" as const, revoked: null, created: null, fields: e.fields, error: e.message }, { status: httpStatusOf(e) });
  }
}

export default function Tokens() {
  const { tokens } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const errors = result?.fields ?? {};
  return (
    <section className="panel stack">
      <div className="panel-head">
        <div>
          <h1>API tokens</h1>
          <p className="muted">
            For CI/CD and scripts: send <code>Authorization: Bearer dcc_…</code> to <code>/api/trpc</code>. A token acts with its role.
          </p>
        </div>
      </div>
      {result?.created ? (
        <div className="secret-once" role="status" data-testid="new-token">
          <strong>New token “{result.created.name}” ({result.created.role}). Copy it now: it is shown this once.</strong>
          <code>{result.created.token}</code>
        </div>
      ) : null}
      {result?.revoked ? <p className="notice" role="status">Revoked “{result.revoked}”. It is refused from now on.</p> : null}
      {result?.error && !Object.keys(errors).length ? <p className="form-error" role="alert">{result.error}</p> : null}
      <Form method="post" className="inline-form" aria-label="Create a token">
        <CsrfInput />
        <input type="hidden" name="intent" value="create" />
        <Field name="name" label="Name" error={errors.name}>
          {(p) => <input {...p} required maxLength={80} placeholder="ci-deploy" autoComplete="off" />}
        </Field>
        <Field name="role" label="Role" error={errors.role}>
          {(p) => (
            <select {...p} defaultValue="operator">
              <option value="viewer">viewer (read only)</option>
              <option value="operator">operator (apps and lifecycle)</option>
              <option value="admin">admin (everything)</option>
            </select>
          )}
        </Field>
        <Field name="expiresInDays" id="f-expires" label="Expires in (days)" error={errors.expiresInDays ?? errors.expiresAt}>
          {(p) => <input {...p} inputMode="numeric" placeholder="never" autoComplete="off" />}
        </Field>
        <button type="submit" className="button primary" disabled={busy}>
          Create token
        </button>
      </Form>
      <DataTable caption="API tokens" columns={["Name", "Token", "Role", "Created", "Expires", "Last used", "State"]} actions empty={tokens.length === 0 ? "No tokens yet." : null}>
        {tokens.map((t) => (
          <tr key={t.id} data-token={t.id}>
            <th scope="row">{t.name}</th>
            <td className="mono">{t.prefix}…</td>
            <td>{t.role}</td>
            <td className="mono small">{t.createdAt.slice(0, 16).replace("T", " ")} by {t.createdBy}</td>
            <td className="mono small">{t.expiresAt ? t.expiresAt.slice(0, 16).replace("T", " ") : "never"}</td>
            <td className="mono small">{t.lastUsedAt ? t.lastUsedAt.slice(0, 16).replace("T", " ") : "—"}</td>
            <td>{t.revokedAt ? "revoked" : t.active ? "active" : "expired"}</td>
            <td>
              {t.revokedAt ? null : (
                <RowAction intent="revoke" fields={{ id: t.id }} label="Revoke" ariaLabel={`Revoke ${t.name}`} />
              )}
            </td>
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
