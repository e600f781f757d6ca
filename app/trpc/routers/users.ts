import { z } from "zod";
import { createUser, listUsers, removeUser, updateUser, UserCreateInput, UsernameInput, UserUpdateInput } from "../../services/users.server";
import { adminProcedure, checkedByService, router } from "../init";

export const usersRouter = router({
  list: adminProcedure.input(z.strictObject({}).optional()).query(async ({ ctx }) => ({ items: await listUsers(ctx) })),
  create: adminProcedure.input(checkedByService(UserCreateInput)).mutation(({ ctx, input }) => createUser(ctx, ctx.actor, input)),
  update: adminProcedure.input(checkedByService(UserUpdateInput)).mutation(({ ctx, input }) => updateUser(ctx, ctx.actor, input)),
  remove: adminProcedure.input(checkedByService(UsernameInput)).mutation(({ ctx, input }) => removeUser(ctx, ctx.actor, input)),
});
