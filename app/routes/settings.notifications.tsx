import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { NOTIFICATION_EVENTS } from "../../db/schema/notifications";
import { requireUser } from "../access.server";
import { CsrfInput } from "../components/CsrfInput";
import { RowAction } from "../components/RowAction";
import { httpStatusOf, ServiceError } from "../services/errors";
import { createTarget, deleteTarget, listTargets, testTarget } from "../services/notification-targets.server";
import { Field } from "../components/Field";
import { DataTable } from "../components/DataTable";

export const meta: MetaFunction = () => [{ title: "Notifications · Docker Control Center" }];

const EVENT_LABELS: Record<(typeof NOTIFICATION_EVENTS)[number], string> = {
  "app.stopped": "an app stopped without anyone asking",
  "deploy.failed": "a deploy failed",
  "host.offline": "a host is offline",
  vulnerability: "a new high or critical vulnerability",
};

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "admin");
  return { targets: await listTargets(context.dcc) };
}

type Reply = { intent: string; note: string | null; secret: string | null; fields: Record<string, string>; error: string | null };

export async function action({ request, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "admin");
  const form = await request.formData();
  const intent = String(form.get("intent") ?? "");
  const reply = (r: Partial<Reply>, status = 200) => json({ intent, note: null, secret: null, fields: {}, error: null, ...r } as Reply, { status });
  try {
    if (intent === "delete") {
      await deleteTarget(context.dcc, actor, { id: String(form.get("id") ?? "") });
      return reply({ note: "Target deleted; its waiting deliveries are dropped." });
    }
    if (intent === "test") {
      await testTarget(context.dcc, actor, { id: String(form.get("id") ?? "") });
      return reply({ note: "Test message queued: its outcome shows as the target's last delivery in a moment." });
    }
    const secret = String(form.get("secret") ?? "");
    const events = form.getAll("events").map(String);
    const r = await createTarget(context.dcc, actor, {
      kind: String(form.get("kind") ?? ""),
      url: String(form.get("url") ?? ""),
      ...(secret ? { secret } : {}),
      ...(events.length ? { events } : {}),
    });
    return reply({ note: `Target ${r.item.url} added.`, secret: r.secret ?? null });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return reply({ fields: e.fields, error: e.message }, httpStatusOf(e));
  }
}

export default function Notifications() {
  const { targets } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const errors = result?.fields ?? {};
  return (
    <section className="panel stack">
      <div className="panel-head">
        <div>
          <h1>Notifications</h1>
          <p className="muted">
            Webhooks for crashes, failed deploys, offline hosts and new high or critical vulnerabilities. JSON targets are signed:{" "}
            <code>X-DCC-Signature: sha256=HMAC(secret, X-DCC-Timestamp + "." + body)</code>.
          </p>
        </div>
      </div>
      {result?.secret ? (
        <div className="secret-once" role="status" data-testid="new-secret">
          <strong>Signing secret for the new target. Copy it now: it is shown this once.</strong>
          <code>{result.secret}</code>
        </div>
      ) : null}
      {result?.note ? <p className="notice" role="status">{result.note}</p> : null}
      {result?.error && !Object.keys(errors).length ? <p className="form-error" role="alert">{result.error}</p> : null}
      <Form method="post" className="inline-form" aria-label="Add a notification target">
        <CsrfInput />
        <input type="hidden" name="intent" value="create" />
        <Field name="kind" id="n-kind" label="Kind" error={errors.kind}>
          {(p) => (
            <select {...p} defaultValue="json">
              <option value="json">JSON webhook (signed)</option>
              <option value="slack">Slack-compatible</option>
            </select>
          )}
        </Field>
        <Field name="url" id="n-url" label="URL" error={errors.url}>
          {(p) => <input {...p} required placeholder="https://hooks.example.com/dcc" autoComplete="off" />}
        </Field>
        <Field name="secret" id="n-secret" label="Secret (JSON only)" error={errors.secret}>
          {(p) => <input {...p} type="password" placeholder="generated when empty" autoComplete="off" />}
        </Field>
        <fieldset className={`field event-choices${Object.keys(errors).some((k) => k.startsWith("events")) ? " invalid" : ""}`}>
          <legend>Events (all when none ticked)</legend>
          {NOTIFICATION_EVENTS.map((e) => (
            <label key={e} className="small">
              <input type="checkbox" name="events" value={e} /> {EVENT_LABELS[e]}
            </label>
          ))}
        </fieldset>
        <button type="submit" className="button primary" disabled={busy}>
          Add target
        </button>
      </Form>
      <DataTable caption="Notification targets" columns={["URL", "Kind", "Events", "Last delivery", "Waiting"]} actions empty={targets.length === 0 ? "No targets yet." : null}>
        {targets.map((t) => (
          <tr key={t.id} data-target={t.id}>
            <th scope="row" className="mono small">{t.url}</th>
            <td>
              {t.kind}
              {t.hasSecret ? <span className="muted small"> · signed</span> : null}
            </td>
            <td className="small">{t.events.join(", ")}</td>
            <td className="small" data-last-outcome={t.lastOutcome ?? ""}>
              {t.lastOutcome ? (
                <>
                  {t.lastOutcome}
                  {t.lastHttpStatus ? ` (HTTP ${t.lastHttpStatus})` : ""} <span className="mono">{t.lastAttemptAt?.slice(0, 19).replace("T", " ")}</span>
                  {t.lastError ? <div className="muted">{t.lastError}</div> : null}
                </>
              ) : (
                <span className="muted">never</span>
              )}
            </td>
            <td>{t.pending}</td>
            <td>
              <Form method="post" className="row-actions">
                <CsrfInput />
                <input type="hidden" name="intent" value="test" />
                <input type="hidden" name="id" value={t.id} />
                <button type="submit" className="button small" aria-label={`Send a test to ${t.url}`}>
                  Send test
                </button>
              </Form>
              <RowAction intent="delete" fields={{ id: t.id }} label="Delete" ariaLabel={`Delete ${t.url}`} confirm="Delete this target?" />
            </td>
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
