import type { z } from "zod";
import { fieldErrors } from "../../agent/src/contract/validation";
import { ServiceError } from "./errors";

/** Parses raw input against a named schema, or throws BAD_REQUEST naming each bad field. */
export function parseInput<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success) throw ServiceError.invalid(fieldErrors(r.error));
  return r.data;
}
