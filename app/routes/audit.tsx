import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, Link, useLoaderData } from "@remix-run/react";
import { requireUser } from "../access.server";
import { Field } from "../components/Field";
import { AuditListInput, listAudit } from "../services/audit.server";
import { DataTable } from "../components/DataTable";

export const meta: MetaFunction = () => [{ title: "Audit log · Docker Control Center" }];

const TEXT_FILTERS = ["actor", "action", "target"] as const;

/** Query-string filters → the same input `audit.list` takes (dates from the form are days, read as UTC). */
function filtersFrom(url: URL) {
  const p = url.searchParams;
  const input: Record<string, unknown> = {};
  for (const k of TEXT_FILTERS) if (p.get(k)) input[k] = p.get(k);
  if (p.get("outcome")) input.outcome = p.get("outcome");
  if (/^\d{4}-\d{2}-\d{2}$/.test(p.get("since") ?? "")) input.since = `${p.get("since")}T00:00:00.000Z`;
  if (/^\d{4}-\d{2}-\d{2}$/.test(p.get("until") ?? "")) input.until = `${p.get("until")}T23:59:59.999Z`;
  if (/^\d{1,15}$/.test(p.get("cursor") ?? "")) input.cursor = Number(p.get("cursor"));
  return input;
}

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "admin");
  const url = new URL(request.url);
  const parsed = AuditListInput.safeParse(filtersFrom(url));
  const filters = Object.fromEntries([...TEXT_FILTERS, "outcome", "since", "until"].map((k) => [k, url.searchParams.get(k) ?? ""]));
  const page = parsed.success ? await listAudit(context.dcc, parsed.data) : { items: [], nextCursor: null };
  return { items: page.items, nextCursor: page.nextCursor, filters, error: parsed.success ? null : "Some filters are not valid." };
}

export default function Audit() {
  const { items, nextCursor, filters, error } = useLoaderData<typeof loader>();
  const older = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
  if (nextCursor) older.set("cursor", String(nextCursor));
  return (
    <section className="panel">
      <div className="panel-head">
        <div>
          <h1>Audit log</h1>
          <p className="muted">Every change, lifecycle action, sign-in, token and user change, newest first. Entries cannot be changed or deleted.</p>
        </div>
      </div>
      <Form method="get" className="filters" aria-label="Filter the audit log">
        <Field name="actor" label="Actor">
          {(p) => <input {...p} defaultValue={filters.actor} placeholder="user:alice or token:*" />}
        </Field>
        <Field name="action" label="Action">
          {(p) => <input {...p} defaultValue={filters.action} placeholder="app.create or app.*" />}
        </Field>
        <Field name="target" label="Target">
          {(p) => <input {...p} defaultValue={filters.target} placeholder="my-app" />}
        </Field>
        <Field name="outcome" label="Outcome">
          {(p) => (
            <select {...p} defaultValue={filters.outcome}>
              <option value="">any</option>
              <option value="ok">ok</option>
              <option value="denied">denied</option>
              <option value="error">error</option>
            </select>
          )}
        </Field>
        <Field name="since" label="Since">
          {(p) => <input {...p} type="date" defaultValue={filters.since} />}
        </Field>
        <Field name="until" label="Until">
          {(p) => <input {...p} type="date" defaultValue={filters.until} />}
        </Field>
        <div className="form-actions">
          <Link to="/audit" className="button secondary">Clear</Link>
          <button type="submit" className="button primary">Filter</button>
        </div>
      </Form>
      {error ? <p className="form-error" role="alert">{error}</p> : null}
      <DataTable caption="Audit entries" columns={["Time (UTC)", "Actor", "Action", "Target", "Outcome", "From", "Detail"]} empty={items.length === 0 ? "No entries match." : null}>
        {items.map((e) => (
          <tr key={e.id} data-audit={e.action}>
            <td className="mono small">{e.at.replace("T", " ").slice(0, 19)}</td>
            <td className="mono small">{e.actor}</td>
            <td className="mono small">{e.action}</td>
            <td className="mono small">{e.target ?? "—"}</td>
            <td className={`outcome-${e.outcome}`}>{e.outcome}</td>
            <td className="mono small">{e.sourceAddress ?? "—"}</td>
            <td className="mono small wrap">{e.detail ? JSON.stringify(e.detail) : ""}</td>
          </tr>
        ))}
    </DataTable>
      {nextCursor ? (
        <div className="pager">
          <Link className="button secondary" to={`/audit?${older.toString()}`}>
            Older entries
          </Link>
        </div>
      ) : null}
    </section>
  );
}
