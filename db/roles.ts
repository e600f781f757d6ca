// The console's roles, lowest first: each role may do everything the ones before it may. The one
// home of the ladder: the users and tokens tables' CHECKs, the zod schema, the guards and the
// users page derive from it. No imports: the browser bundle takes it too.
export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** True when `role` is `min` or above it on the ladder. */
export function atLeast(role: Role, min: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(min);
}
