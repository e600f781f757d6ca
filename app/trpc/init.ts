// tRPC building blocks: context, error shape with per-field detail, and the procedure builders an
// auth layer tightens (viewer < operator < admin).
import { initTRPC, TRPCError } from "@trpc/server";
import { z, ZodError } from "zod";
import { fieldErrors } from "../../agent/src/contract/validation";
import { atLeast, type Role } from "../../db/roles";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "../services/audit.server";
import { ServiceError } from "../services/errors";
import { publicProcedureName } from "./aliases";

export interface TrpcContext extends ConsoleContext {
  actor: Actor;
  req: Request;
}

/** `minRole` is what the procedure's builder demands; the HTTP route reads it for streams. */
export interface ProcedureMeta {
  minRole?: Role;
}

const t = initTRPC.context<TrpcContext>().meta<ProcedureMeta>().create({
  // Live streams send a ping every 15 s so proxies keep them open and dead viewers are noticed.
  sse: { ping: { enabled: true, intervalMs: 15_000 }, client: { reconnectAfterInactivityMs: 40_000 } },
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    const fields = cause instanceof ZodError ? fieldErrors(cause) : cause instanceof ServiceError ? cause.fields : undefined;
    const message = cause instanceof ZodError && fields ? ServiceError.invalid(fields).message : shape.message;
    const { stack: _stack, ...data } = shape.data;
    if (data.path !== undefined) data.path = publicProcedureName(data.path);
    return { ...shape, message, data: { ...data, ...(fields && Object.keys(fields).length ? { fields } : {}) } };
  },
});

export const router = t.router;

/** Service errors become tRPC errors with the same code; anything else stays a 500. */
const serviceErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof ServiceError) {
    const cause = result.error.cause;
    throw new TRPCError({ code: cause.code, message: cause.message, cause });
  }
  return result;
});

export const publicProcedure = t.procedure.use(serviceErrors);

/** A stream's service errors become tRPC errors too (middleware only sees the call, not the iteration). */
export async function* asTrpcErrors<T>(stream: AsyncGenerator<T>): AsyncGenerator<T> {
  try {
    yield* stream;
  } catch (e) {
    if (e instanceof ServiceError) throw new TRPCError({ code: e.code, message: e.message, cause: e });
    throw e;
  }
}

/** Every procedure names its minimum role; anonymous callers are refused (401) before input is parsed. */
function requireRole(min: Role) {
  return t.middleware(async ({ ctx, next, path, type }) => {
    if (ctx.actor.kind === "anonymous") {
      throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in or send an API token" });
    }
    if (!atLeast(ctx.actor.role, min)) {
      // A refused write is worth knowing about: who tried what.
      if (type === "mutation") await recordAudit(ctx.db, ctx.actor, { action: publicProcedureName(path), outcome: "denied", detail: { required: min } });
      throw new TRPCError({ code: "FORBIDDEN", message: `requires the ${min} role` });
    }
    return next();
  });
}

/**
 * The input of a procedure whose service validates it with `schema` itself (the same named schema
 * its form uses), so that every bad field is named at once, configuration-dependent rules
 * included, and nothing is validated twice. Typed as `schema` for clients (AppRouter); at the
 * tRPC layer it lets every value through to the service.
 */
export function checkedByService<S extends z.ZodType>(_schema: S) {
  return z.custom<z.input<S>>(() => true);
}

export const viewerProcedure = publicProcedure.meta({ minRole: "viewer" }).use(requireRole("viewer"));
export const operatorProcedure = publicProcedure.meta({ minRole: "operator" }).use(requireRole("operator"));
export const adminProcedure = publicProcedure.meta({ minRole: "admin" }).use(requireRole("admin"));
