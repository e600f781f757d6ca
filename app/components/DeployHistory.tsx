import { Form } from "@remix-run/react";
import { CsrfInput } from "./CsrfInput";
import { DataTable } from "./DataTable";
import type { DeployDto } from "../services/deploys.server";

const when = (at: string) => new Date(at).toISOString().replace("T", " ").slice(0, 19);

/**
 * The app's deploys, newest first, with a Rollback per successful deploy of another commit (for
 * operators; viewers see the history only). Rolling back asks first and keeps untracked files.
 */
export function DeployHistory({ app, items, canRollback, error }: { app: { name: string; commitSha: string | null }; items: DeployDto[]; canRollback: boolean; error?: string | null }) {
  return (
    <section className="panel" aria-labelledby="deploys-title">
      <h2 id="deploys-title">Deploy history</h2>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      <DataTable
        caption={`Deploys of ${app.name}, newest first`}
        columns={["Commit", "Ref", "Action", "Who", "When", "Outcome"]}
        actions={canRollback}
        empty={items.length ? null : "No deploys yet."}
      >
        {items.map((d) => (
          <tr key={d.id} data-deploy={d.commitSha ?? ""}>
            <td className="mono" title={d.commitSha ?? undefined}>
              {d.commitSha ? d.commitSha.slice(0, 12) : "—"}
              {d.commitSha && d.commitSha === app.commitSha ? <span className="muted small"> (current)</span> : null}
            </td>
            <td className="mono">{d.ref ? `${d.ref}${d.refKind && d.refKind !== "commit" ? ` (${d.refKind})` : ""}` : "—"}</td>
            <td>{d.action}</td>
            <td>{d.actor ?? "—"}</td>
            <td className="small">
              <time dateTime={d.at}>{when(d.at)}</time>
            </td>
            <td className={d.outcome === "ok" ? "ok" : "failed"} title={d.error ?? undefined}>
              {d.outcome === "ok" ? "ok" : `failed${d.error ? `: ${d.error.slice(0, 120)}` : ""}`}
            </td>
            {canRollback ? (
              <td>
                {d.outcome === "ok" && d.commitSha && d.commitSha !== app.commitSha ? (
                  <Form
                    method="post"
                    className="row-actions"
                    onSubmit={(e) => {
                      if (!window.confirm(`Roll ${app.name} back to commit ${d.commitSha!.slice(0, 12)}? The code changes to that commit; untracked files (models, outputs) are kept, and the app's branch or tag stays as it is.`)) e.preventDefault();
                    }}
                  >
                    <CsrfInput />
                    <input type="hidden" name="intent" value="rollback" />
                    <input type="hidden" name="commitSha" value={d.commitSha} />
                    <button type="submit" className="button small secondary" aria-label={`Roll back ${app.name} to ${d.commitSha.slice(0, 12)}`}>
                      Rollback
                    </button>
                  </Form>
                ) : null}
              </td>
            ) : null}
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
