import { router } from "./init";
import { appsRouter } from "./routers/apps";
import { auditRouter } from "./routers/audit";
import { authRouter } from "./routers/auth";
import { hostsRouter } from "./routers/hosts";
import { notificationsRouter } from "./routers/notifications";
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
});

export type AppRouter = typeof appRouter;
