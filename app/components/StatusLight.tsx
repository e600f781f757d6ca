import type { AppDto } from "../services/apps.server";

type Light = "green" | "amber" | "red" | "grey";
type LightInput = Pick<AppDto, "status" | "health"> & { hostOnline?: boolean };

/**
 * DESIGN.md's light: grey = the app's host is offline (its last known status shown beside it);
 * green = RUNNING and reachable; amber = STARTING, or RUNNING but the port does not answer;
 * red = STOPPED (the reason shown beside it).
 */
export function lightOf(app: LightInput): Light {
  if (app.hostOnline === false) return "grey";
  if (app.status === "STOPPED") return "red";
  if (app.status === "RUNNING" && app.health === "reachable") return "green";
  return "amber";
}

export function statusDetail(app: LightInput & Pick<AppDto, "phase" | "lastError">): string {
  if (app.hostOnline === false) return `host offline (was ${app.status})${app.lastError ? `: ${app.lastError}` : ""}`;
  if (app.status === "STOPPED") return app.lastError ?? app.phase ?? "stopped";
  // A stalled start says why (no output, no answer for so long) instead of the bare phase.
  if (app.status === "STARTING") return app.phase === "stalled" && app.lastError ? app.lastError : (app.phase ?? "starting");
  if (app.lastError && app.health === "reachable") return `port answering; ${app.lastError}`;
  return app.health === "reachable" ? "port answering" : "port not answering";
}

/**
 * The light with its status word; `reason` also writes why beside a red, amber or grey light (the
 * dashboard row), not only in the tooltip.
 */
export function StatusLight({ app, reason = false }: { app: LightInput & Pick<AppDto, "name" | "phase" | "lastError">; reason?: boolean }) {
  const light = lightOf(app);
  const detail = statusDetail(app);
  return (
    <span className="status-cell">
      <span className={`status status-${light}`} tabIndex={0} aria-label={`${app.status}: ${detail}`} data-status={app.status} data-light={light}>
        <span className="dot" aria-hidden="true" />
        <span className="status-text">{app.status}</span>
        <span className="status-detail" role="tooltip">{detail}</span>
      </span>
      {reason && light !== "green" ? (
        <span className="status-reason small" data-reason title={detail}>
          {detail}
        </span>
      ) : null}
    </span>
  );
}
