// Public procedure names that tRPC cannot use as router keys (`apply` is reserved by its client),
// and the router key each one lives under. The API route rewrites requests to the key; errors
// name the public procedure again.
export const PROCEDURE_ALIASES: Readonly<Record<string, string>> = { "apps.apply": "apps.applySpec" };

const PUBLIC_NAMES: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(PROCEDURE_ALIASES).map(([name, key]) => [key, name]));

/** The name a caller used for a procedure, given its router key. */
export function publicProcedureName(path: string): string {
  return Object.hasOwn(PUBLIC_NAMES, path) ? PUBLIC_NAMES[path]! : path;
}
