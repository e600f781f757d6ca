import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { z } from "zod";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { requireUser } from "../access.server";
import { httpStatusOf, ServiceError } from "../services/errors";
import { cancelApp, forceDeinstall, requestAppAction } from "../services/app-actions.server";

const Verb = z.enum(["start", "stop", "restart", "reinstall", "deinstall", "cancel", "remove", "start-anyway"]);

/** The dashboard's lifecycle buttons post here (a form action, so it works without JavaScript too). */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "operator");
  const form = await request.formData();
  const name = AppNameSchema.safeParse(params.name);
  const verb = Verb.safeParse(form.get("verb"));
  if (!name.success || !verb.success) return json({ ok: false, error: "unknown app or action" }, { status: 400 });
  try {
    const v = verb.data;
    const r =
      v === "cancel"
        ? await cancelApp(context.dcc, actor, name.data)
        : v === "remove"
          ? await forceDeinstall(context.dcc, actor, name.data)
          : v === "start-anyway"
            ? // past a GPU memory or CUDA refusal (the agent named the reason in the app's last error)
              await requestAppAction(context.dcc, actor, "start", name.data, { force: true })
            : await requestAppAction(context.dcc, actor, v, name.data, { clean: form.get("clean") === "on" });
    return json({ ok: true, queued: r.queued, error: null });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return json({ ok: false, queued: false, error: e.message }, { status: httpStatusOf(e) });
  }
}
