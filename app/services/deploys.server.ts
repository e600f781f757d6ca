// An app's deploy history and rollback. A row is written when a provision, reinstall, update or
// rollback ends (command-answers.server.ts, in the same transaction as the command's end), kept
// to the newest DEPLOYS_KEPT_PER_APP per app. apps.rollback redeploys a commit from that history:
// a reinstall command pinned to the commit, which keeps untracked files and leaves the app's
// gitRef as it is (the next plain reinstall follows the ref again).
import { and, desc, eq, inArray, lt, ne } from "drizzle-orm";
import { z } from "zod";
import { CommitShaSchema } from "../../agent/src/contract/git-ref";
import { AppNameSchema } from "../../agent/src/contract/validation";
import type { Db } from "../../db/client";
import { DEPLOYS_KEPT_PER_APP, apps, deploys, type Command } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { requireApp } from "./apps.server";
import { ServiceError } from "./errors";
import { requestAppAction, type ActionRequestResult } from "./app-actions.server";

type Tx = Pick<Db, "insert" | "select" | "delete">;

const SHA = /^[0-9a-f]{40,64}$/;
const DEPLOYING = new Set(["provision", "reinstall", "update"]);

export const DeploysInput = z.strictObject({ name: AppNameSchema });
export const RollbackInput = z.strictObject({ name: AppNameSchema, commitSha: CommitShaSchema.optional() });

export interface DeployDto {
  id: number;
  action: string;
  commitSha: string | null;
  ref: string | null;
  refKind: string | null;
  /** Who asked: `user:alice`, `token:…`, `system:console`. */
  actor: string | null;
  outcome: "ok" | "failed";
  error: string | null;
  at: string;
}

/** A rollback is a reinstall pinned to a commit. */
export const deployActionOf = (cmd: Pick<Command, "action" | "params">) =>
  cmd.action === "reinstall" && typeof cmd.params.commitSha === "string" ? ("rollback" as const) : (cmd.action as "provision" | "reinstall" | "update");

/** Records a deploy-like command's end (inside the caller's transaction) and trims the app's history. */
export async function recordDeploy(tx: Tx, cmd: Command, answer: { ok: boolean; result?: Record<string, unknown>; error?: string }): Promise<void> {
  if (!cmd.appId || !DEPLOYING.has(cmd.action)) return;
  const result = answer.result ?? {};
  const spec = (cmd.params.spec ?? {}) as { gitRef?: unknown };
  const commitSha = typeof result.commitSha === "string" && SHA.test(result.commitSha) ? result.commitSha : null;
  const ref = typeof result.ref === "string" ? result.ref.slice(0, 200) : typeof spec.gitRef === "string" ? spec.gitRef : null;
  const refKind = typeof result.refKind === "string" && ["branch", "tag", "commit"].includes(result.refKind) ? result.refKind : null;
  await tx.insert(deploys).values({
    appId: cmd.appId,
    commandId: cmd.id,
    action: deployActionOf(cmd),
    commitSha,
    ref,
    refKind,
    actor: cmd.createdBy,
    outcome: answer.ok ? "ok" : "failed",
    error: answer.ok ? null : (answer.error ?? "failed").slice(0, 2000),
  });
  const [cut] = await tx
    .select({ id: deploys.id })
    .from(deploys)
    .where(eq(deploys.appId, cmd.appId))
    .orderBy(desc(deploys.id))
    .limit(1)
    .offset(DEPLOYS_KEPT_PER_APP - 1);
  if (cut) await tx.delete(deploys).where(and(eq(deploys.appId, cmd.appId), lt(deploys.id, cut.id)));
}

/** `apps.deploys`: newest first. */
export async function listDeploys(ctx: Pick<ConsoleContext, "db">, name: string): Promise<DeployDto[]> {
  await requireApp(ctx.db, name);
  const rows = await ctx.db
    .select({ d: deploys })
    .from(deploys)
    .innerJoin(apps, eq(apps.id, deploys.appId))
    .where(eq(apps.name, name))
    .orderBy(desc(deploys.id))
    .limit(DEPLOYS_KEPT_PER_APP);
  return rows.map(({ d }) => ({
    id: d.id,
    action: d.action,
    commitSha: d.commitSha,
    ref: d.ref,
    refKind: d.refKind,
    actor: d.actor,
    outcome: d.outcome,
    error: d.error,
    at: d.createdAt,
  }));
}

/**
 * `apps.rollback`: the given commit (which must be one this app deployed successfully), else the
 * newest successfully deployed commit other than the current one.
 */
export async function rollbackApp(ctx: ConsoleContext, actor: Actor, input: z.infer<typeof RollbackInput>): Promise<ActionRequestResult> {
  const [row] = await ctx.db.select({ id: apps.id, commitSha: apps.commitSha }).from(apps).where(eq(apps.name, input.name));
  if (!row) throw ServiceError.field("NOT_FOUND", "name", `does not name an existing app (${input.name})`);
  const ok = and(eq(deploys.appId, row.id), eq(deploys.outcome, "ok"));
  let target: string | null = null;
  if (input.commitSha !== undefined) {
    const [hit] = await ctx.db.select({ sha: deploys.commitSha }).from(deploys).where(and(ok, eq(deploys.commitSha, input.commitSha))).limit(1);
    if (!hit) throw ServiceError.field("BAD_REQUEST", "commitSha", `is not a commit this app deployed successfully (${input.commitSha})`);
    target = input.commitSha;
  } else {
    const current = row.commitSha ? [ne(deploys.commitSha, row.commitSha)] : [];
    const [prev] = await ctx.db
      .select({ sha: deploys.commitSha })
      .from(deploys)
      .where(and(ok, inArray(deploys.action, ["provision", "reinstall", "update", "rollback"]), ...current))
      .orderBy(desc(deploys.id))
      .limit(1);
    if (!prev?.sha) throw ServiceError.field("PRECONDITION_FAILED", "commitSha", "has no default: this app has no earlier successful deploy at another commit");
    target = prev.sha;
  }
  return requestAppAction(ctx, actor, "reinstall", input.name, { commitSha: target });
}
