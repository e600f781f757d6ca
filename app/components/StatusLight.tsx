import type { AppDto } from "../services/apps.server";

type Light = "green" | "amber" | "red";

/** DESIGN.md's light: green = RUNNING and reachable; amber = STARTING or unanswered; red = STOPPED. */
export function lightOf(app: Pick<AppDto, "status" | "health">): Light {
  if (app.status === "STOPPED") return "red";
  if (app.status === "RUNNING" && app.health === "reachable") return "green";
  return "amber";
}

export function statusDetail(app: Pick<AppDto, "status" | "health" | "phase" | "lastError">): string {
  if (app.status === "STOPPED") return app.lastError ?? app.phase ?? "stopped";
  if (app.status === "STARTING") return app.phase ?? "starting";
  return app.health === "reachable" ? "port answering" : "port not answering";
}

export function StatusLight({ app }: { app: Pick<AppDto, "name" | "status" | "health" | "phase" | "lastError"> }) {
  const light = lightOf(app);
  const detail = statusDetail(app);
  return (
    <span className={`status status-${light}`} tabIndex={0} aria-label={`${app.status}: ${detail}`} data-status={app.status} data-light={light}>
      <span className="dot" aria-hidden="true" />
      <span className="status-text">{app.status}</span>
      <span className="status-detail" role="tooltip">{detail}</span>
    </span>
  );
}
