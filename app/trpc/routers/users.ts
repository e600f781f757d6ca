import { z } from "zod";
import { createUser, listUsers, removeUser, updateUser } from "../../services/users.server";
import { adminProcedure, router } from "../init";

export const usersRouter = router({
  list: adminProcedure.input(z.strictObject({}).optional()).query(async ({ ctx }) => ({ items: await listUsers(ctx) })),
  create: adminProcedure.input(z.unknown()).mutation(({ ctx, input }) => createUser(ctx, ctx.actor, input)),
  update: adminProcedure.input(z.unknown()).mutation(({ ctx, input }) => updateUser(ctx, ctx.actor, input)),
  remove: adminProcedure.input(z.unknown()).mutation(({ ctx, input }) => removeUser(ctx, ctx.actor, input)),
});
