// Typed failures of the ops layer. The channel turns them into a command result; `code` says
// what kind of failure it was, `message` is written for the operator.
export type OpsErrorCode = "INVALID" | "NOT_FOUND" | "CONFLICT" | "FAILED";

export class OpsError extends Error {
  readonly code: OpsErrorCode;
  constructor(code: OpsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "OpsError";
    this.code = code;
  }
}

/** Parameters that failed the contract's schema: nothing was touched. */
export class ParamsValidationError extends OpsError {
  readonly fields: Record<string, string>;
  constructor(fields: Record<string, string>) {
    super("INVALID", `invalid parameters: ${Object.entries(fields).map(([k, v]) => `${k} ${v}`).join("; ")}`);
    this.name = "ParamsValidationError";
    this.fields = fields;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Why a command was stopped before it finished: the reason its signal was aborted with. */
export class AbortedError extends OpsError {
  readonly kind: "cancel" | "deadline";
  constructor(kind: "cancel" | "deadline", message: string) {
    super("FAILED", message);
    this.name = "AbortedError";
    this.kind = kind;
  }
}

/** Throws the signal's reason (an AbortedError) when it was aborted. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  throw signal.reason instanceof Error ? signal.reason : new AbortedError("cancel", "cancelled");
}

/** A time limit in words: "45 s", "60 min". */
export function formatDuration(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.max(1, Math.round(ms / 1000))} s`;
}
