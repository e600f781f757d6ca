import { getTemplate, listTemplates, PromoteInput, promoteApp, TemplateSlugInput } from "../../services/templates.server";
import { operatorProcedure, router, viewerProcedure } from "../init";

export const templatesRouter = router({
  list: viewerProcedure.query(async ({ ctx }) => ({ items: await listTemplates(ctx) })),
  get: viewerProcedure.input(TemplateSlugInput).query(({ ctx, input }) => getTemplate(ctx, input.slug)),
  /** `{ name }` of an installed app (+ optional slug, title, summary) → a template linking back to it. */
  promote: operatorProcedure.input(PromoteInput).mutation(({ ctx, input }) => promoteApp(ctx, ctx.actor, input)),
});
