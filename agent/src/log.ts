// Structured logs: one JSON object per line on stdout, so a supervisor (journald, docker logs)
// and the tests can read them without parsing prose.
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;
export type Logger = (level: LogLevel, msg: string, fields?: LogFields) => void;

export function jsonLogger(base: LogFields = {}, write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  return (level, msg, fields = {}) => {
    write(JSON.stringify({ t: new Date().toISOString(), level, msg, ...base, ...fields }) + "\n");
  };
}

export const silentLogger: Logger = () => {};
