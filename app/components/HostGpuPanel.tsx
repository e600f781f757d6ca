// A host's GPU ledger (each GPU's memory split by the apps holding it), its GPU preflight (driver,
// the CUDA it supports, container toolkit) and the shared model store's size per folder, as the
// agent last reported them in its facts.
import type { HostFacts } from "../../agent/src/contract/facts";
import { formatBytes, formatMiB } from "../../agent/src/contract/units";

const TOOLKIT: Record<string, string> = { runtime: "NVIDIA runtime", cdi: "CDI", "runtime+cdi": "NVIDIA runtime and CDI", none: "none" };

export function HostGpuPanel({ facts, hostName }: { facts: HostFacts; hostName: string }) {
  const ledger = facts.gpuLedger ?? [];
  const pf = facts.preflight;
  const store = facts.modelStore;
  return (
    <div className="host-gpu-panel">
      {pf ? (
        <div className="preflight" data-preflight>
          <h3>GPU preflight</h3>
          <p className="small">
            driver {pf.driverVersion ?? "?"} · supports CUDA {pf.cudaVersion ?? "?"} · container toolkit: {TOOLKIT[pf.toolkit] ?? pf.toolkit}
          </p>
          {pf.problems.map((p) => (
            <p key={p} className="error small" role="status">
              {p}
            </p>
          ))}
        </div>
      ) : null}
      {ledger.length ? (
        <ul className="gpu-ledger" aria-label={`GPU memory of ${hostName} by app`}>
          {ledger.map((g) => {
            const byApp = new Map<string, number>();
            for (const h of g.holders) byApp.set(h.app ?? "other processes", (byApp.get(h.app ?? "other processes") ?? 0) + (h.memoryMiB ?? 0));
            return (
              <li key={g.uuid} data-gpu-ledger={g.index}>
                <div className="small">
                  <strong>GPU {g.index}</strong> {formatMiB(g.usedMiB)} of {formatMiB(g.totalMiB)} used · {formatMiB(g.freeMiB)} free{g.mig ? " · MIG" : ""}
                </div>
                <div className="ledger-bar" role="img" aria-label={[...byApp].map(([a, m]) => `${a} ${formatMiB(m)}`).join(", ") || "no processes"}>
                  {[...byApp].map(([app, mib]) => (
                    <span key={app} className={app === "other processes" ? "seg other" : "seg"} style={{ width: `${g.totalMiB ? Math.max(1, (mib / g.totalMiB) * 100) : 0}%` }} title={`${app}: ${formatMiB(mib)}`} />
                  ))}
                </div>
                <ul className="small ledger-holders">
                  {[...byApp].map(([app, mib]) => (
                    <li key={app}>
                      {app}: {formatMiB(mib)}
                    </li>
                  ))}
                </ul>
              </li>
            );
          })}
        </ul>
      ) : null}
      {store ? (
        <div className="model-store" data-model-store>
          <h3>Model store</h3>
          <p className="small mono">
            {store.path} · {formatBytes(store.totalBytes)}
            {store.partial ? " (at least: too many files to count)" : ""}
          </p>
          {store.folders.length ? (
            <ul className="small">
              {store.folders.map((f) => (
                <li key={f.name}>
                  <span className="mono">{f.name}</span> {formatBytes(f.bytes)}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
