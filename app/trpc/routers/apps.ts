import { tracked } from "@trpc/server";
import { z } from "zod";
import { AppNameSchema } from "../../../agent/src/contract/validation";
import {
  AppEventsListInput,
  DeinstallInput,
  ReinstallInput,
  StartInput,
  cancelApp,
  forceDeinstall,
  listAppEvents,
  requestAppAction,
} from "../../services/app-actions.server";
import { changeStream } from "../../services/live.server";
import { AppCreateInput, AppListInput, AppNameInput, AppUpdateInput, getApp, listApps, updateApp } from "../../services/apps.server";
import { createApp, suggestPort, SuggestPortInput } from "../../services/register.server";
import { AppLogFollowInput, AppLogsInput, DEFAULT_TAIL, followAppLogs, readAppLogs } from "../../services/logs.server";
import { appVulnerabilityReport } from "../../services/scan.server";
import { asTrpcErrors, checkedByService, operatorProcedure, router, viewerProcedure } from "../init";
import { applyApp } from "../../services/apply.server";
import { DeploysInput, RollbackInput, listDeploys, rollbackApp } from "../../services/deploys.server";
import { deleteWebhook, ensureWebhook, WebhookDeleteInput, WebhookInput } from "../../services/webhooks.server";
import { ShareCreateInput, ShareListInput, ShareRevokeInput, createShareLink, listShareLinks, revokeShareLink } from "../../services/gateway.server";

/** The console's origin for URLs it hands out (webhooks): DCC_PUBLIC_URL, else the request's. */
const originOf = (ctx: { config: { publicUrl?: string }; req: Request }) => new URL(ctx.config.publicUrl ?? ctx.req.url).origin;

export const appsRouter = router({
  list: viewerProcedure.input(AppListInput).query(async ({ ctx, input }) => ({ items: await listApps(ctx, input) })),
  get: viewerProcedure.input(AppNameInput).query(({ ctx, input }) => getApp(ctx, input.name)),
  // The service checks create and update input itself, so that every bad field is named at once,
  // including the rules that depend on configuration (insecure git, host allow-list).
  create: operatorProcedure.input(checkedByService(AppCreateInput)).mutation(({ ctx, input }) => createApp(ctx, ctx.actor, input)),
  update: operatorProcedure.input(checkedByService(AppUpdateInput)).mutation(({ ctx, input }) => updateApp(ctx, ctx.actor, input)),
  /**
   * `apps.apply` on the wire (tRPC reserves `apply` as a router key; app/routes/api.trpc.$.ts maps
   * the public name here). Create or update to the given spec, idempotent by name:
   * `{ app, created, changed, commandId }`.
   */
  applySpec: operatorProcedure.input(checkedByService(AppCreateInput)).mutation(({ ctx, input }) => applyApp(ctx, ctx.actor, input)),
  /** The app's deploy webhook `{ url, secret }`; the secret is shown once (on creation or `rotate`). */
  webhook: operatorProcedure.input(WebhookInput).mutation(({ ctx, input }) => ensureWebhook(ctx, ctx.actor, input, originOf(ctx))),
  // ---- gateway: share links (a person without an account opens the app through its gateway)
  shareLinks: operatorProcedure.input(ShareListInput).query(async ({ ctx, input }) => ({ items: await listShareLinks(ctx, input) })),
  /** `{ url, item }`: the URL carries the link's secret and is shown once. */
  shareCreate: operatorProcedure.input(ShareCreateInput).mutation(({ ctx, input }) => createShareLink(ctx, ctx.actor, input, originOf(ctx))),
  shareRevoke: operatorProcedure.input(ShareRevokeInput).mutation(({ ctx, input }) => revokeShareLink(ctx, ctx.actor, input)),
  // ---- end gateway
  webhookDelete: operatorProcedure.input(WebhookDeleteInput).mutation(({ ctx, input }) => deleteWebhook(ctx, ctx.actor, input)),
  start: operatorProcedure.input(StartInput).mutation(({ ctx, input }) => requestAppAction(ctx, ctx.actor, "start", input.name, { force: input.force })),
  stop: operatorProcedure.input(AppNameInput).mutation(({ ctx, input }) => requestAppAction(ctx, ctx.actor, "stop", input.name)),
  restart: operatorProcedure.input(StartInput).mutation(({ ctx, input }) => requestAppAction(ctx, ctx.actor, "restart", input.name, { force: input.force })),
  /** The port an app would get now (a template's default taken on the chosen host → the next free one), for the Add App dialog. */
  suggestPort: viewerProcedure.input(SuggestPortInput).query(({ ctx, input }) => suggestPort(ctx, input)),
  reinstall: operatorProcedure
    .input(ReinstallInput)
    .mutation(({ ctx, input }) => requestAppAction(ctx, ctx.actor, "reinstall", input.name, { clean: input.clean })),
  /** Deployed commits, newest first: commit, ref, who, when, outcome. */
  deploys: viewerProcedure.input(DeploysInput).query(async ({ ctx, input }) => ({ items: await listDeploys(ctx, input.name) })),
  /** Redeploys the previous successful commit, or the given one from the app's history (untracked files kept). */
  rollback: operatorProcedure.input(RollbackInput).mutation(({ ctx, input }) => rollbackApp(ctx, ctx.actor, input)),
  /** The app's stored event timeline, newest first (`events` is the live stream). */
  timeline: viewerProcedure.input(AppEventsListInput).query(async ({ ctx, input }) => ({ items: await listAppEvents(ctx, input) })),
  /** With `force: true` (admin): the record goes at once, for an app whose host is offline or revoked. */
  deinstall: operatorProcedure
    .input(DeinstallInput)
    .mutation(({ ctx, input }) => (input.force ? forceDeinstall(ctx, ctx.actor, input.name) : requestAppAction(ctx, ctx.actor, "deinstall", input.name))),
  /** Stops the app's queued or running deploy; the app shows what its agent last observed. */
  cancel: operatorProcedure.input(AppNameInput).mutation(({ ctx, input }) => cancelApp(ctx, ctx.actor, input.name)),
  /** Known vulnerabilities of the app's pinned dependencies at its deployed commit (OSV), most severe first. */
  vulnerabilities: viewerProcedure.input(AppNameInput).query(({ ctx, input }) => appVulnerabilityReport(ctx, input.name)),
  /** The app's last `tail` (default 200) log lines, read from its host's agent. */
  logs: viewerProcedure.input(AppLogsInput).query(async ({ ctx, input }) => ({ items: await readAppLogs(ctx, input.name, input.tail) })),
  /** Server-sent events: `{ lines }` batches of the app's log, the last `tail` lines first, then live. */
  logFollow: viewerProcedure.input(AppLogFollowInput).subscription(async function* ({ ctx, input, signal }) {
    yield* asTrpcErrors(followAppLogs(ctx, input.name, input.tail ?? DEFAULT_TAIL, signal));
  }),
  /**
   * Server-sent events: `{ id, type, app, ...changed fields }` per change. Resumes after the
   * given (or the browser's Last-Event-ID) event id without losing one.
   */
  events: viewerProcedure
    .input(
      z
        .strictObject({
          app: AppNameSchema.optional(),
          lastEventId: z.string().regex(/^\d{1,15}$/).nullish(),
        })
        .optional(),
    )
    .subscription(async function* ({ ctx, input, signal }) {
      const lastEventId = input?.lastEventId ? Number(input.lastEventId) : undefined;
      for await (const change of changeStream(ctx, { app: input?.app, lastEventId, signal })) {
        yield change.id > 0 ? tracked(String(change.id), change) : change;
      }
    }),
});
