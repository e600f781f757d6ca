import { z } from "zod";
import { CreateEnrollmentInput, createEnrollment } from "../../services/enrollment.server";
import { HostCleanupInput, HostOrphansInput, cleanupHost, getOrphans, scanOrphans } from "../../services/cleanup.server";
import { HostPingInput, HostUpdateInput, getHost, listHosts, pingHost, revokeHost, updateHost } from "../../services/hosts.server";
import { HostPrepullInput, prepullHost } from "../../services/prepull.server";
import { adminProcedure, operatorProcedure, router, viewerProcedure } from "../init";

const HostIdInput = z.strictObject({ id: z.string().min(1).max(64) });

export const hostsRouter = router({
  list: viewerProcedure.query(async ({ ctx }) => ({ items: await listHosts(ctx) })),
  get: viewerProcedure.input(HostIdInput).query(({ ctx, input }) => getHost(ctx, input.id)),
  update: adminProcedure.input(HostUpdateInput).mutation(({ ctx, input }) => updateHost(ctx, ctx.actor, input)),
  createEnrollment: adminProcedure.input(CreateEnrollmentInput).mutation(({ ctx, input }) =>
    createEnrollment(ctx, ctx.actor, { name: input?.name, consoleOrigin: ctx.config.publicUrl ?? new URL(ctx.req.url).origin }),
  ),
  revoke: adminProcedure.input(HostIdInput).mutation(({ ctx, input }) => revokeHost(ctx, ctx.actor, input.id)),
  ping: operatorProcedure.input(HostPingInput).mutation(({ ctx, input }) => pingHost(ctx, ctx.actor, input)),
  // Cleanup of orphans (host-level, so admin): the latest findings, a fresh dry-run scan, removal.
  orphans: adminProcedure.input(HostOrphansInput).query(({ ctx, input }) => getOrphans(ctx, input.id)),
  scanOrphans: adminProcedure.input(HostOrphansInput).mutation(({ ctx, input }) => scanOrphans(ctx, ctx.actor, input.id)),
  cleanup: adminProcedure.input(HostCleanupInput).mutation(({ ctx, input }) => cleanupHost(ctx, ctx.actor, input)),
  // An image onto the host ahead of its apps (default: the console's base image).
  prepull: adminProcedure.input(HostPrepullInput).mutation(({ ctx, input }) => prepullHost(ctx, ctx.actor, input)),
});
