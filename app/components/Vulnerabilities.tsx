// Known vulnerabilities of an app's dependencies: the dashboard badge (highest severity and count)
// and the app page's list with the version that fixes each one.
import type { Severity } from "../../db/schema/vulnerabilities";
import type { VulnerabilityDto } from "../services/scan.server";
import { DataTable } from "./DataTable";

export interface VulnSummary {
  severity: Severity;
  count: number;
}

export function VulnBadge({ name, summary }: { name: string; summary: VulnSummary | null | undefined }) {
  if (!summary || summary.count === 0) return null;
  const label = `${summary.count} known vulnerabilit${summary.count === 1 ? "y" : "ies"}, highest ${summary.severity}`;
  return (
    <a className={`vuln-badge sev-${summary.severity}`} href={`/apps/${name}#vulnerabilities`} title={label} aria-label={label} data-vulns={summary.count} data-severity={summary.severity}>
      {summary.severity} · {summary.count}
    </a>
  );
}

/** What the app page lists: the API's vulnerability object without its bookkeeping fields. */
export type VulnItem = Omit<VulnerabilityDto, "commitSha" | "firstSeenAt">;

export interface ScanState {
  state: string;
  scannedAt: string | null;
  error: string | null;
  packages: number;
  pinned: number;
  manifests: string[];
  commitSha: string;
}

export function VulnerabilityList({ items, scan }: { items: VulnItem[]; scan: ScanState | null }) {
  return (
    <section className="panel" id="vulnerabilities" aria-labelledby="vulns-title">
      <h2 id="vulns-title">Dependencies and vulnerabilities</h2>
      {!scan ? (
        <p className="muted">No dependency inventory yet: the agent reports one after each deploy at a new commit.</p>
      ) : (
        <p className="muted small" data-scan-state={scan.state}>
          {scan.packages} packages ({scan.pinned} pinned) from {scan.manifests.length} manifest{scan.manifests.length === 1 ? "" : "s"} at{" "}
          <span className="mono">{scan.commitSha.slice(0, 8)}</span>;{" "}
          {scan.state === "done" ? `checked against OSV ${scan.scannedAt ? new Date(scan.scannedAt).toLocaleString() : ""}` : scan.state === "failed" ? `check failed, retrying: ${scan.error ?? ""}` : "check pending"}
        </p>
      )}
      {items.length ? (
        <DataTable caption="Known vulnerabilities" className="vulns-table" columns={["Severity", "Advisory", "Package", "Version", "Fixed in"]}>
          {items.map((v) => (
            <tr key={`${v.id}:${v.ecosystem}:${v.package}:${v.version}`} data-vuln={v.id}>
              <td>
                <span className={`vuln-badge sev-${v.severity}`}>
                  {v.severity}
                  {v.score !== null ? ` ${v.score.toFixed(1)}` : ""}
                </span>
              </td>
              <td>
                <a href={v.url} target="_blank" rel="noreferrer" className="mono">
                  {v.id}
                </a>
                {v.aliases.length ? <span className="muted small"> {v.aliases.join(", ")}</span> : null}
                {v.summary ? <div className="small">{v.summary}</div> : null}
              </td>
              <td>
                {v.package} <span className="muted small">{v.ecosystem}</span>
              </td>
              <td className="mono">{v.version}</td>
              <td className="mono" data-fixed-in>
                {v.fixedIn ?? <span className="muted">no fix yet</span>}
              </td>
            </tr>
          ))}
        </DataTable>
      ) : scan?.state === "done" ? (
        <p>No known vulnerabilities in the pinned dependencies.</p>
      ) : null}
    </section>
  );
}
