import { z } from "zod";
import { createTarget, deleteTarget, listTargets, NotificationCreateInput, NotificationIdInput, testTarget } from "../../services/notification-targets.server";
import { adminProcedure, checkedByService, router } from "../init";

export const notificationsRouter = router({
  list: adminProcedure.input(z.strictObject({}).optional()).query(async ({ ctx }) => ({ items: await listTargets(ctx) })),
  /** `{ kind: "json" | "slack", url, secret?, events? }` → `{ item, secret? }`; a generated secret is shown this once. */
  create: adminProcedure.input(checkedByService(NotificationCreateInput)).mutation(({ ctx, input }) => createTarget(ctx, ctx.actor, input)),
  delete: adminProcedure.input(checkedByService(NotificationIdInput)).mutation(({ ctx, input }) => deleteTarget(ctx, ctx.actor, input)),
  /** Queues a test message; its outcome shows as the target's last delivery status. */
  test: adminProcedure.input(checkedByService(NotificationIdInput)).mutation(({ ctx, input }) => testTarget(ctx, ctx.actor, input)),
});
