/** A use-case failure the API layer turns into a tRPC error (and a form into field messages). */
export type ServiceErrorCode = "BAD_REQUEST" | "CONFLICT" | "NOT_FOUND" | "FORBIDDEN" | "UNAUTHORIZED" | "PRECONDITION_FAILED" | "GATEWAY_TIMEOUT";

export class ServiceError extends Error {
  constructor(
    readonly code: ServiceErrorCode,
    message: string,
    /** Per-field detail: `{ port: "is already used by app x on this host" }`. */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ServiceError";
  }

  static field(code: ServiceErrorCode, field: string, problem: string): ServiceError {
    return new ServiceError(code, `${field} ${problem}`, { [field]: problem });
  }

  static invalid(fields: Record<string, string>): ServiceError {
    const message = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join("; ");
    return new ServiceError("BAD_REQUEST", message || "invalid input", fields);
  }
}

/** The HTTP status a form action answers for a service error. */
export function httpStatusOf(e: ServiceError): number {
  return { BAD_REQUEST: 400, UNAUTHORIZED: 401, FORBIDDEN: 403, NOT_FOUND: 404, CONFLICT: 409, PRECONDITION_FAILED: 412, GATEWAY_TIMEOUT: 504 }[e.code];
}
