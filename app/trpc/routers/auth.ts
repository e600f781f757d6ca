import { z } from "zod";
import { sessionCsrfToken } from "../../access.server";
import { signOut, signOutEverywhere } from "../../services/auth.server";
import { router, viewerProcedure } from "../init";

// No-input procedures still take a strict empty object, so a stray field is a 400, not a call.
const NoInput = z.strictObject({}).optional();

export const authRouter = router({
  /** Who am I: kind (user / token), name, role, and for browser sessions the CSRF token writes must carry. */
  me: viewerProcedure.input(NoInput).query(({ ctx }) => ({
    kind: ctx.actor.kind,
    id: ctx.actor.id,
    role: ctx.actor.role,
    csrfToken: sessionCsrfToken(ctx, ctx.actor),
  })),
  signOut: viewerProcedure.input(NoInput).mutation(({ ctx }) => signOut(ctx, ctx.actor)),
  signOutEverywhere: viewerProcedure.input(NoInput).mutation(({ ctx }) => signOutEverywhere(ctx, ctx.actor)),
});
