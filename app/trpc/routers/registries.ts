import { z } from "zod";
import { deleteRegistry, listRegistries, RegistryHostInput, RegistrySetInput, setRegistry } from "../../services/registries.server";
import { adminProcedure, checkedByService, router } from "../init";

export const registriesRouter = router({
  list: adminProcedure.input(z.strictObject({}).optional()).query(async ({ ctx }) => ({ items: await listRegistries(ctx) })),
  /** `{ host, username, password }`: sets or replaces the login; the password is never returned. */
  set: adminProcedure.input(checkedByService(RegistrySetInput)).mutation(({ ctx, input }) => setRegistry(ctx, ctx.actor, input)),
  delete: adminProcedure.input(checkedByService(RegistryHostInput)).mutation(({ ctx, input }) => deleteRegistry(ctx, ctx.actor, input)),
});
