import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { requireUser } from "../access.server";
import { CsrfInput } from "../components/CsrfInput";
import { DataTable } from "../components/DataTable";
import { RowAction } from "../components/RowAction";
import { httpStatusOf, ServiceError } from "../services/errors";
import { deleteRegistry, listRegistries, setRegistry } from "../services/registries.server";

export const meta: MetaFunction = () => [{ title: "Registries · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "admin");
  return { registries: await listRegistries(context.dcc) };
}

type Reply = { note: string | null; fields: Record<string, string>; error: string | null };

export async function action({ request, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "admin");
  const form = await request.formData();
  const reply = (r: Partial<Reply>, status = 200) => json({ note: null, fields: {}, error: null, ...r } as Reply, { status });
  const text = (k: string) => String(form.get(k) ?? "");
  try {
    if (form.get("intent") === "delete") {
      await deleteRegistry(context.dcc, actor, { host: text("host") });
      return reply({ note: `Login for ${text("host")} removed.` });
    }
    const r = await setRegistry(context.dcc, actor, { host: text("host"), username: text("username"), password: text("password") });
    return reply({ note: `Login for ${r.host} saved.` });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return reply({ fields: e.fields, error: e.message }, httpStatusOf(e));
  }
}

/** Logins for private image registries: the password is write-only (sealed at rest, never shown). */
export default function Registries() {
  const { registries } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const errors = result?.fields ?? {};
  const field = (k: "host" | "username" | "password", label: string, props: React.ComponentPropsWithoutRef<"input">) => (
    <div className={`field${errors[k] ? " invalid" : ""}`}>
      <label htmlFor={`r-${k}`}>{label}</label>
      <input id={`r-${k}`} name={k} autoComplete="off" spellCheck={false} aria-invalid={errors[k] ? true : undefined} {...props} />
      {errors[k] ? <p className="field-error">{label} {errors[k]}</p> : null}
    </div>
  );
  return (
    <section className="panel stack">
      <div className="panel-head">
        <div>
          <h1>Registries</h1>
          <p className="muted">Logins for private image registries. A deploy whose image names one of these hosts pulls with its login; the password is stored encrypted and never shown again.</p>
        </div>
      </div>
      {result?.note ? <p className="notice" role="status">{result.note}</p> : null}
      {result?.error && !Object.keys(errors).length ? <p className="form-error" role="alert">{result.error}</p> : null}
      <Form method="post" className="inline-form" aria-label="Set a registry login">
        <CsrfInput />
        <input type="hidden" name="intent" value="set" />
        {field("host", "Registry host", { placeholder: "registry.example.com:5000", required: true })}
        {field("username", "User", { required: true })}
        {field("password", "Password or token", { type: "password", autoComplete: "new-password", required: true })}
        <button type="submit" className="button primary" disabled={busy}>
          Save login
        </button>
      </Form>
      <DataTable caption="Registry logins" columns={["Host", "User", "Updated"]} actions empty={registries.length === 0 ? "No registry logins yet." : null}>
        {registries.map((r) => (
          <tr key={r.host} data-registry={r.host}>
            <th scope="row" className="mono small">{r.host}</th>
            <td>{r.username}</td>
            <td className="mono small">{r.updatedAt.slice(0, 19).replace("T", " ")}</td>
            <td>
              <RowAction intent="delete" fields={{ host: r.host }} label="Remove" ariaLabel={`Remove the login for ${r.host}`} confirm="Remove this registry login?" />
            </td>
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
