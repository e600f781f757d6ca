// The Orphans panel of a host on the Hosts page (admins only): the latest findings with size and
// age, "Scan" (a fresh dry-run scan), "Remove selected (dry run first)" — which runs a dry run of
// the chosen items and then asks for confirmation listing exactly what would go — and the switch
// for the scheduled cleanup. Every button is a plain form posting to the hosts route's action.
import { Form, Link } from "@remix-run/react";
import type { HostOrphans } from "../services/cleanup.server";
import { CsrfInput } from "./CsrfInput";
import { DataTable } from "./DataTable";

export interface OrphansActionData {
  hostId: string;
  intent: string;
  commandId: string | null;
  finished: boolean;
  queued: boolean;
  error: string | null;
}

const KIND_LABEL: Record<string, string> = {
  container: "container",
  network: "network",
  workspace: "workspace",
  git: "git dir",
  compose: "compose dir",
};

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v >= 10 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export function formatAge(iso: string | null): string {
  if (!iso) return "unknown";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

export function OrphansPanel({
  host,
  orphans,
  result,
  busy,
}: {
  host: { id: string; name: string; online: boolean; revoked: boolean };
  orphans: HostOrphans;
  /** The route action's answer, when it was about this host. */
  result: OrphansActionData | null;
  busy: boolean;
}) {
  const { scan, last, pending } = orphans;
  const confirm =
    result?.intent === "dry-run" && last && last.commandId === result.commandId && last.dryRun && last.ok ? last : null;
  const removal = last && !last.dryRun ? last : null;
  const hidden = (
    <>
      <CsrfInput />
      <input type="hidden" name="hostId" value={host.id} />
    </>
  );
  return (
    <section className="orphans" aria-label={`Orphans on ${host.name}`} data-orphans={host.id}>
      <div className="orphans-head">
        <h3>Orphans</h3>
        <span className="muted small" data-testid="orphans-summary">
          {scan
            ? `${scan.foundTotal} found · ${formatBytes(scan.totalBytes)} · scanned ${formatAge(scan.scannedAt)} ago`
            : "not scanned yet"}
        </span>
        <Form method="post" preventScrollReset>
          {hidden}
          <input type="hidden" name="intent" value="scan" />
          <button type="submit" className="button small" disabled={busy || host.revoked}>
            Scan
          </button>
        </Form>
        <Form method="post" preventScrollReset>
          {hidden}
          <input type="hidden" name="intent" value="auto-cleanup" />
          <input type="hidden" name="value" value={orphans.autoCleanup ? "off" : "on"} />
          <button type="submit" className="button small" disabled={busy} aria-pressed={orphans.autoCleanup}>
            Scheduled cleanup: {orphans.autoCleanup ? "on" : "off"}
          </button>
        </Form>
      </div>
      <p className="muted small">
        Workspaces, git and compose dirs, containers and networks of ours that no app on this host owns. Containers without our labels are never
        touched. {orphans.autoCleanup ? `Scheduled: every ${orphans.autoCleanupHours} h, orphans older than ${orphans.autoCleanupHours} h are removed.` : null}
      </p>

      {result?.error ? (
        <p className="form-error" role="alert">
          {result.error}
        </p>
      ) : null}
      {pending ? (
        <p className="notice" role="status">
          {pending.dryRun ? "Scanning" : "Removing"}…{host.online ? "" : " (queued: the host is offline; it runs when the host connects)"}
        </p>
      ) : null}
      {last && last.ok === false ? (
        <p className="form-error" role="alert">
          The last cleanup {last.dryRun ? "scan" : "removal"} failed: {last.error}
        </p>
      ) : null}
      {removal && removal.ok ? (
        <div className="notice" role="status" data-testid="orphans-removed">
          {removal.scheduled ? "Scheduled cleanup" : "Cleanup"} {formatAge(removal.finishedAt)} ago: removed {removal.removed.length} item
          {removal.removed.length === 1 ? "" : "s"} ({formatBytes(removal.freedBytes)})
          {removal.failed.length ? `; ${removal.failed.length} could not be removed: ${removal.failed.map((f) => `${f.name ?? f.id} (${f.reason})`).join("; ")}` : ""}.
        </div>
      ) : null}

      {confirm ? (
        <div className="confirm-box" role="alertdialog" aria-labelledby={`confirm-${host.id}`} data-testid="orphans-confirm">
          <p id={`confirm-${host.id}`}>
            <strong>
              {confirm.selected.length
                ? `Dry run: ${confirm.selected.length === 1 ? "this item" : `these ${confirm.selected.length} items`} would be removed (${formatBytes(confirm.freedBytes)})`
                : "Dry run: nothing would be removed"}
            </strong>
          </p>
          {confirm.selected.length ? (
            <ul className="confirm-list">
              {confirm.selected.map((o) => (
                <li key={`${o.kind}:${o.id}`}>
                  {KIND_LABEL[o.kind] ?? o.kind} <span className="mono">{o.name ?? o.id}</span> · {formatBytes(o.sizeBytes ?? 0)}
                </li>
              ))}
            </ul>
          ) : null}
          {confirm.skipped.length ? (
            <>
              <p className="small">Left alone:</p>
              <ul className="confirm-list small">
                {confirm.skipped.map((o) => (
                  <li key={`${o.kind}:${o.id}`}>
                    {KIND_LABEL[o.kind] ?? o.kind} <span className="mono">{o.name ?? o.id}</span>: {o.reason}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          <div className="form-actions">
            <Link className="button small" to="/hosts" preventScrollReset>
              Cancel
            </Link>
            {confirm.selected.length ? (
              <Form method="post" preventScrollReset>
                {hidden}
                <input type="hidden" name="intent" value="remove" />
                {confirm.selected.map((o) => (
                  <input key={`${o.kind}:${o.id}`} type="hidden" name="item" value={`${o.kind}:${o.id}`} />
                ))}
                <button type="submit" className="button small danger" disabled={busy}>
                  {`Remove ${confirm.selected.length === 1 ? "this item" : `these ${confirm.selected.length} items`}`}
                </button>
              </Form>
            ) : null}
          </div>
        </div>
      ) : null}

      {scan && scan.items.length ? (
        <Form method="post" preventScrollReset>
          {hidden}
          <input type="hidden" name="intent" value="dry-run" />
          <DataTable caption={`Orphans on ${host.name}`} className="orphans-table" columns={[{ hidden: "Select" }, "Kind", "Name", "Size", "Age", "Why"]}>
            {scan.items.map((i) => (
              <tr key={`${i.kind}:${i.id}`} data-orphan={`${i.kind}:${i.id}`}>
                <td>
                  <input type="checkbox" name="item" value={`${i.kind}:${i.id}`} defaultChecked aria-label={`Select ${KIND_LABEL[i.kind]} ${i.name}`} />
                </td>
                <td>{KIND_LABEL[i.kind] ?? i.kind}</td>
                <td className="mono wrap">
                  {i.name}
                  {i.state ? <span className="muted small"> ({i.state})</span> : null}
                </td>
                <td title={`${i.sizeBytes} bytes`}>
                  {formatBytes(i.sizeBytes)}
                  {i.sizeComplete ? "" : "+"}
                </td>
                <td title={i.at ?? undefined}>{formatAge(i.at)}</td>
                <td className="wrap small">{i.reason}</td>
              </tr>
            ))}
          </DataTable>
          {scan.truncated ? <p className="muted small">Showing {scan.items.length} of {scan.foundTotal}; remove these and scan again for the rest.</p> : null}
          <div className="form-actions">
            <button type="submit" className="button small danger" disabled={busy || host.revoked}>
              Remove selected (dry run first)
            </button>
          </div>
        </Form>
      ) : scan ? (
        <p className="muted small">No orphans on this host.</p>
      ) : null}
    </section>
  );
}
