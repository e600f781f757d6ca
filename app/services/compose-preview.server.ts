// The compose file of an app as its agent renders it: the same renderer (agent/src/ops/compose.ts)
// and base template, fed with the deploy spec the console sends and the host's reported workspace
// root. Rendered here rather than fetched from the agent, so it shows with the host offline and the
// agent needs no file-reading request; the one value the console cannot know (the agent's uid) is
// the agent's own default when it runs as root, and the page says so.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { HostFactsSchema } from "../../agent/src/contract/facts";
import { loadComposeBase, renderCompose, serializeCompose } from "../../agent/src/ops/compose";
import { apps, hosts } from "../../db/schema";
import type { ConsoleContext } from "../context.server";
import { buildDeploySpec } from "./apps.server";

/** The container user an agent running as root gives apps (ops/manager.ts). */
export const DEFAULT_CONTAINER_UID = 1000;

export interface ComposePreview {
  text: string;
  /** What was assumed, for the label under the file. */
  assumptions: string[];
}

export async function composePreview(ctx: Pick<ConsoleContext, "db" | "config">, name: string): Promise<ComposePreview | null> {
  const [row] = await ctx.db.select().from(apps).where(eq(apps.name, name));
  if (!row) return null;
  const [host] = row.hostId ? await ctx.db.select({ facts: hosts.facts }).from(hosts).where(eq(hosts.id, row.hostId)) : [];
  const facts = HostFactsSchema.catch({}).parse(host?.facts ?? {});
  const assumptions = [`container user ${DEFAULT_CONTAINER_UID}:${DEFAULT_CONTAINER_UID} (the agent's default when it runs as root; otherwise its own uid)`];
  const root = facts.workspaceRoot ?? ctx.config.workspaceRoot;
  if (!facts.workspaceRoot) assumptions.push(`workspace root ${root} (the host has not reported its own)`);
  if (!row.hostId) assumptions.push("no host yet: the host label is a placeholder");
  const file = join(ctx.config.rootDir, "templates/compose-base.yaml");
  const { base } = loadComposeBase(existsSync(file) ? file : undefined);
  const doc = renderCompose({
    spec: await buildDeploySpec(ctx, row),
    hostId: row.hostId ?? "(not placed)",
    workspace: join(root, row.name),
    uid: DEFAULT_CONTAINER_UID,
    gid: DEFAULT_CONTAINER_UID,
    base,
  });
  return { text: serializeCompose(doc), assumptions };
}
