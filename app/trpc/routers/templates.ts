import { getTemplate, listTemplates, TemplateSlugInput } from "../../services/templates.server";
import { router, viewerProcedure } from "../init";

export const templatesRouter = router({
  list: viewerProcedure.query(async ({ ctx }) => ({ items: await listTemplates(ctx) })),
  get: viewerProcedure.input(TemplateSlugInput).query(({ ctx, input }) => getTemplate(ctx, input.slug)),
});
