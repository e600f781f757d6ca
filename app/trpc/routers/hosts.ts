import { z } from "zod";
import { getHost, listHosts } from "../../services/hosts.server";
import { router, viewerProcedure } from "../init";

const HostIdInput = z.strictObject({ id: z.string().min(1).max(64) });

export const hostsRouter = router({
  list: viewerProcedure.query(async ({ ctx }) => ({ items: await listHosts(ctx) })),
  get: viewerProcedure.input(HostIdInput).query(({ ctx, input }) => getHost(ctx, input.id)),
});
