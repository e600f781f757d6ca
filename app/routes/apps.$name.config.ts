import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { requireUser } from "../access.server";
import { configFromForm } from "../components/app-config-form";
import { updateApp } from "../services/apps.server";
import { httpStatusOf, ServiceError } from "../services/errors";

/** The app page's Configuration panel posts here: env, secrets or the git credential, through apps.update. */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "operator");
  const name = AppNameSchema.safeParse(params.name);
  if (!name.success) return json({ ok: false, error: "unknown app", fields: {} }, { status: 400 });
  const form = await request.formData();
  const intent = form.get("intent");
  const all = configFromForm(form);
  const key = intent === "env" ? "env" : intent === "secrets" ? "secrets" : intent === "git" ? "gitCredential" : null;
  if (!key || all[key] === undefined) return json({ ok: false, error: "nothing to change", fields: {} }, { status: 400 });
  try {
    await updateApp(context.dcc, actor, { name: name.data, [key]: all[key] });
    return json({ ok: true, error: null, fields: {} });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return json({ ok: false, error: e.message, fields: e.fields }, { status: httpStatusOf(e) });
  }
}
