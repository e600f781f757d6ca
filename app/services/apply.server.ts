// apps.apply: make an app match a declared spec, idempotently by name — what a pipeline calls on
// every run. A new name is created (apps.create); an existing app gets only the fields that differ
// (apps.update, which queues the one `update` command they need); the same spec again changes
// nothing and queues nothing. Fields left out stay as they are. Validation is the create and
// update services' own, so every bad field is named exactly as there.
import { and, desc, eq } from "drizzle-orm";
import { repositoryProblem } from "../../agent/src/contract/validation";
import { commands, type App } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { AppCreateInput, parseInput, requireApp, updateApp, type AppDto } from "./apps.server";
import { registerApp } from "./register.server";
import { appRow } from "./app-writes.server";
import { ServiceError } from "./errors";
import { planSecretWrites, sealedSecrets } from "./app-config.server";

export { AppCreateInput as AppApplyInput };

export interface ApplyResult {
  app: AppDto;
  created: boolean;
  /** The fields that changed (on creation: every field the spec gave). */
  changed: string[];
  /** The provision or update command queued, or null when nothing was (unchanged, or no host yet). */
  commandId: string | null;
}

/** Fields apps.update can change in place. */
const UPDATABLE = ["startCommand", "port", "image", "installCommand", "gpu", "gitRef", "gitSubmodules", "env", "resources", "healthPath", "sharedModels", "startupStallSeconds", "publicPort", "idleStopMinutes"] as const;
/** Fields that name where and what the app is; changing them means a new app. */
const FIXED = ["repository", "templateId", "hostId"] as const;

/** JSON with sorted keys, so `{count, mode}` and `{mode, count}` compare equal. */
const canonical = (v: unknown): string =>
  JSON.stringify(v ?? null, (_k, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));

async function newestCommand(ctx: Pick<ConsoleContext, "db">, appId: string, action: string, since: string): Promise<string | null> {
  const [row] = await ctx.db
    .select({ id: commands.id, issuedAt: commands.issuedAt })
    .from(commands)
    .where(and(eq(commands.appId, appId), eq(commands.action, action)))
    .orderBy(desc(commands.issuedAt))
    .limit(1);
  return row && row.issuedAt >= since ? row.id : null;
}

export async function applyApp(ctx: ConsoleContext, actor: Actor, raw: unknown): Promise<ApplyResult> {
  // The name decides create or update; the create service names every bad field itself.
  const name = (raw as { name?: unknown } | null)?.name;
  const row = typeof name === "string" && name.length <= 63 ? await appRow(ctx.db, name) : undefined;
  const since = new Date(Date.now() - 1).toISOString();
  if (!row) {
    const { app, commandId } = await registerApp(ctx, actor, raw);
    const changed = Object.keys(raw as object).filter((k) => k !== "name");
    return { app, created: true, changed, commandId };
  }

  const input = parseInput(AppCreateInput, raw);
  if (input.repository !== undefined) {
    const problem = repositoryProblem(input.repository, { allowInsecure: ctx.config.allowInsecureGit, allowedHosts: ctx.config.allowedGitHosts });
    if (problem) throw ServiceError.invalid({ repository: problem });
  }
  const fixed: Record<string, string> = {};
  for (const k of FIXED) {
    const given = input[k];
    if (given !== undefined && given !== row[k]) fixed[k] = `cannot change on an existing app (is ${row[k] ?? "unset"}); deinstall it and apply again`;
  }
  if (Object.keys(fixed).length) throw ServiceError.invalid(fixed);

  const patch: Record<string, unknown> = {};
  for (const k of UPDATABLE) {
    if (input[k] !== undefined && canonical(input[k]) !== canonical((row as App)[k])) patch[k] = input[k];
  }
  // Write-only fields are compared by opening what is stored: the same secrets again change nothing.
  if (input.secrets !== undefined || input.gitCredential !== undefined) {
    const plan = planSecretWrites(ctx, row.id, row, input, await sealedSecrets(ctx.db, row.id));
    if (plan.summary.secretsSet.length || plan.summary.secretsRemoved.length) patch.secrets = input.secrets;
    if (plan.summary.gitCredential) patch.gitCredential = input.gitCredential;
  }
  const changed = Object.keys(patch);
  if (!changed.length) {
    return { app: await requireApp(ctx.db, row.name), created: false, changed: [], commandId: null };
  }
  const app = await updateApp(ctx, actor, { name: row.name, ...patch });
  const action = patch.gitRef !== undefined || patch.gitSubmodules !== undefined ? "reinstall" : "update";
  return { app, created: false, changed, commandId: row.hostId ? await newestCommand(ctx, row.id, action, since) : null };
}
