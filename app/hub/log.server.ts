// JSON log lines for the hub and the local agent supervisor (same shape as the server entry's).
export type HubLogger = (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export const hubLog: HubLogger = (level, msg, fields = {}) => {
  if (level === "debug" && !process.env.DCC_DEBUG) return;
  process.stdout.write(JSON.stringify({ t: new Date().toISOString(), level, component: "hub", msg, ...fields }) + "\n");
};
