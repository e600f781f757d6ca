import { router } from "./init";
import { appsRouter } from "./routers/apps";
import { hostsRouter } from "./routers/hosts";
import { templatesRouter } from "./routers/templates";

export const appRouter = router({
  apps: appsRouter,
  templates: templatesRouter,
  hosts: hostsRouter,
});

export type AppRouter = typeof appRouter;
