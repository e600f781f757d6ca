import type { Role } from "../../db/roles";
import { router } from "./init";
import { appsRouter } from "./routers/apps";
import { auditRouter } from "./routers/audit";
import { authRouter } from "./routers/auth";
import { hostsRouter } from "./routers/hosts";
import { notificationsRouter } from "./routers/notifications";
import { registriesRouter } from "./routers/registries";
import { templatesRouter } from "./routers/templates";
import { tokensRouter } from "./routers/tokens";
import { usersRouter } from "./routers/users";

export const appRouter = router({
  apps: appsRouter,
  templates: templatesRouter,
  hosts: hostsRouter,
  audit: auditRouter,
  auth: authRouter,
  tokens: tokensRouter,
  users: usersRouter,
  notifications: notificationsRouter,
  registries: registriesRouter,
});

export type AppRouter = typeof appRouter;

/**
 * The streams (SSE subscriptions) by path, with the role each needs: the HTTP route refuses a
 * caller with a real 401/403 before a stream answers 200. root.test.ts keeps it equal to the
 * procedures' own builders.
 */
export const STREAMS: Readonly<Record<string, Role>> = { "apps.events": "viewer", "apps.logFollow": "viewer" };
