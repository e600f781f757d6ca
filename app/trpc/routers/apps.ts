import { AppCreateInput, AppListInput, AppNameInput, AppUpdateInput, createApp, getApp, listApps, updateApp } from "../../services/apps.server";
import { operatorProcedure, router, viewerProcedure } from "../init";

export const appsRouter = router({
  list: viewerProcedure.input(AppListInput).query(async ({ ctx, input }) => ({ items: await listApps(ctx, input) })),
  get: viewerProcedure.input(AppNameInput).query(({ ctx, input }) => getApp(ctx, input.name)),
  create: operatorProcedure.input(AppCreateInput).mutation(({ ctx, input }) => createApp(ctx, ctx.actor, input)),
  update: operatorProcedure.input(AppUpdateInput).mutation(({ ctx, input }) => updateApp(ctx, ctx.actor, input)),
});
