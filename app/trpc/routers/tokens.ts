import { z } from "zod";
import { createToken, listTokens, revokeToken, TokenCreateInput, TokenIdInput } from "../../services/tokens.server";
import { adminProcedure, checkedByService, router } from "../init";

export const tokensRouter = router({
  list: adminProcedure.input(z.strictObject({}).optional()).query(async ({ ctx }) => ({ items: await listTokens(ctx) })),
  /** `{ name, role, expiresAt? }` → `{ token, item }`; the token is shown this once and never again. */
  create: adminProcedure.input(checkedByService(TokenCreateInput)).mutation(({ ctx, input }) => createToken(ctx, ctx.actor, input)),
  revoke: adminProcedure.input(checkedByService(TokenIdInput)).mutation(({ ctx, input }) => revokeToken(ctx, ctx.actor, input)),
});
