import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { ROLES } from "../../db/roles";
import { requireUser } from "../access.server";
import { RowAction } from "../components/RowAction";
import { CsrfInput } from "../components/CsrfInput";
import { httpStatusOf, ServiceError } from "../services/errors";
import { createUser, listUsers, removeUser, updateUser } from "../services/users.server";
import { Field } from "../components/Field";
import { DataTable } from "../components/DataTable";

export const meta: MetaFunction = () => [{ title: "Users · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const actor = await requireUser(request, context, "admin");
  return { users: await listUsers(context.dcc), me: actor.kind === "user" ? actor.id : null };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "admin");
  const form = await request.formData();
  const intent = String(form.get("intent") ?? "");
  const username = String(form.get("username") ?? "");
  try {
    let message: string;
    if (intent === "create") {
      const u = await createUser(context.dcc, actor, { username, password: String(form.get("password") ?? ""), role: String(form.get("role") ?? "") });
      message = `Created ${u.username} (${u.role}).`;
    } else if (intent === "role") {
      const u = await updateUser(context.dcc, actor, { username, role: String(form.get("role") ?? "") });
      message = `${u.username} is now ${u.role}.`;
    } else if (intent === "password") {
      await updateUser(context.dcc, actor, { username, password: String(form.get("password") ?? "") });
      message = `Set a new password for ${username}; their sessions were ended.`;
    } else if (intent === "disable" || intent === "enable") {
      await updateUser(context.dcc, actor, { username, disabled: intent === "disable" });
      message = intent === "disable" ? `Disabled ${username}; their sessions were ended.` : `Enabled ${username}.`;
    } else if (intent === "remove") {
      await removeUser(context.dcc, actor, { username });
      message = `Removed ${username}.`;
    } else {
      return json({ ok: false, message: "Unknown action.", fields: {} as Record<string, string>, intent, username }, { status: 400 });
    }
    return json({ ok: true, message, fields: {} as Record<string, string>, intent, username });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return json({ ok: false, message: e.message, fields: e.fields, intent, username }, { status: httpStatusOf(e) });
  }
}


export default function Users() {
  const { users, me } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const createErrors = result && !result.ok && result.intent === "create" ? result.fields : {};
  return (
    <section className="panel stack">
      <div className="panel-head">
        <div>
          <h1>Users</h1>
          <p className="muted">admin: users, hosts, tokens, everything · operator: apps, their lifecycle and the marketplace · viewer: read only</p>
        </div>
      </div>
      {result ? (
        <p className={result.ok ? "notice" : "form-error"} role={result.ok ? "status" : "alert"}>
          {result.message}
        </p>
      ) : null}
      <Form method="post" className="inline-form" aria-label="Add a user">
        <CsrfInput />
        <input type="hidden" name="intent" value="create" />
        <Field name="username" label="User name" error={createErrors.username}>
          {(p) => <input {...p} required autoComplete="off" autoCapitalize="none" spellCheck={false} />}
        </Field>
        <Field name="password" label="Password" error={createErrors.password}>
          {(p) => <input {...p} type="password" required minLength={12} autoComplete="new-password" />}
        </Field>
        <Field name="role" label="Role">
          {(p) => (
            <select {...p} defaultValue="viewer">
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit" className="button primary" disabled={busy}>
          Add user
        </button>
      </Form>
      <DataTable caption="Users" columns={["User", "Role", "State", "Last sign-in"]} actions>
        {users.map((u) => (
          <tr key={u.username} data-user={u.username}>
            <th scope="row">
              {u.username}
              {u.username === me ? <span className="muted small"> (you)</span> : null}
            </th>
            <td>{u.role}</td>
            <td>{u.disabled ? "disabled" : "active"}</td>
            <td className="mono small">{u.lastSignInAt ? u.lastSignInAt.slice(0, 16).replace("T", " ") : "never"}</td>
            <td>
              <div className="row-actions">
                <Form method="post">
                  <CsrfInput />
                  <input type="hidden" name="intent" value="role" />
                  <input type="hidden" name="username" value={u.username} />
                  <select name="role" defaultValue={u.role} aria-label={`Role of ${u.username}`}>
                    {ROLES.map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                  <button type="submit" className="button small secondary">Set role</button>
                </Form>
                <Form method="post">
                  <CsrfInput />
                  <input type="hidden" name="intent" value="password" />
                  <input type="hidden" name="username" value={u.username} />
                  <input name="password" type="password" minLength={12} required placeholder="new password" aria-label={`New password for ${u.username}`} autoComplete="new-password" />
                  <button type="submit" className="button small secondary">Set password</button>
                </Form>
                <Form method="post">
                  <CsrfInput />
                  <input type="hidden" name="intent" value={u.disabled ? "enable" : "disable"} />
                  <input type="hidden" name="username" value={u.username} />
                  <button type="submit" className="button small secondary">{u.disabled ? "Enable" : "Disable"}</button>
                </Form>
                <RowAction
                  intent="remove"
                  fields={{ username: u.username }}
                  label="Remove"
                  ariaLabel={`Remove ${u.username}`}
                  confirm={`Remove ${u.username}?`}
                />
              </div>
            </td>
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
