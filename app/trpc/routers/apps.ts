import { z } from "zod";
import { AppListInput, AppNameInput, createApp, getApp, listApps, updateApp } from "../../services/apps.server";
import { operatorProcedure, router, viewerProcedure } from "../init";

export const appsRouter = router({
  list: viewerProcedure.input(AppListInput).query(async ({ ctx, input }) => ({ items: await listApps(ctx, input) })),
  get: viewerProcedure.input(AppNameInput).query(({ ctx, input }) => getApp(ctx, input.name)),
  // The service checks create and update input itself, so that every bad field is named at once,
  // including the rules that depend on configuration (insecure git, host allow-list).
  create: operatorProcedure.input(z.unknown()).mutation(({ ctx, input }) => createApp(ctx, ctx.actor, input)),
  update: operatorProcedure.input(z.unknown()).mutation(({ ctx, input }) => updateApp(ctx, ctx.actor, input)),
});
