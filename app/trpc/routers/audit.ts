import { AuditListInput, listAudit } from "../../services/audit.server";
import { adminProcedure, router } from "../init";

export const auditRouter = router({
  /** Filters: actor, action, target (exact, or a prefix ending in `*`), outcome, since/until; `cursor` pages. */
  list: adminProcedure.input(AuditListInput).query(({ ctx, input }) => listAudit(ctx, input)),
});
