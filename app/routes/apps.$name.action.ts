import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { z } from "zod";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { requireUser } from "../auth.server";
import { ServiceError } from "../services/errors";
import { runLifecycle } from "../services/lifecycle.server";

const Verb = z.enum(["start", "stop", "restart", "reinstall", "deinstall"]);

/** The dashboard's lifecycle buttons post here (a form action, so it works without JavaScript too). */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "operator");
  const form = await request.formData();
  const name = AppNameSchema.safeParse(params.name);
  const verb = Verb.safeParse(form.get("verb"));
  if (!name.success || !verb.success) return json({ ok: false, error: "unknown app or action" }, { status: 400 });
  try {
    const r = await runLifecycle(context.dcc, actor, verb.data, name.data, { clean: form.get("clean") === "on" });
    return json({ ok: true, queued: r.queued, error: null });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    const status = e.code === "NOT_FOUND" ? 404 : e.code === "CONFLICT" ? 409 : e.code === "PRECONDITION_FAILED" ? 412 : 400;
    return json({ ok: false, queued: false, error: e.message }, { status });
  }
}
