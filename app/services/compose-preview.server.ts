// The compose file of an app as its agent renders it: the same renderer (the shared contract,
// agent/src/contract/compose.ts) and base template, fed with the deploy spec the console sends and the host's reported workspace
// root. Rendered here rather than fetched from the agent, so it shows with the host offline and the
// agent needs no file-reading request; the one value the console cannot know (the agent's uid) is
// the agent's own default when it runs as root, and the page says so.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { readHostFacts } from "../../agent/src/contract/facts";
import { DEFAULT_COMPOSE_BASE, DEFAULT_CONTAINER_UID, parseComposeBase, renderCompose, serializeCompose, type ComposeBase } from "../../agent/src/contract/compose";
import { hosts } from "../../db/schema";
import type { ConsoleContext } from "../context.server";
import { buildDeploySpec } from "./apps.server";
import { appRow } from "./app-writes.server";

export { DEFAULT_CONTAINER_UID };

/** The base template the agent reads beside itself, else its in-code copy; a broken file is an error (the agent refuses it too). */
function composeBase(rootDir: string): ComposeBase {
  const file = join(rootDir, "templates/compose-base.yaml");
  if (!existsSync(file)) return DEFAULT_COMPOSE_BASE;
  const parsed = parseComposeBase(readFileSync(file, "utf8"));
  if ("error" in parsed) throw new Error(`compose base template ${file} is not valid: ${parsed.error}`);
  return parsed.base;
}

export interface ComposePreview {
  text: string;
  /** What was assumed, for the label under the file. */
  assumptions: string[];
}

export async function composePreview(ctx: Pick<ConsoleContext, "db" | "config">, name: string): Promise<ComposePreview | null> {
  const row = await appRow(ctx.db, name);
  if (!row) return null;
  const [host] = row.hostId ? await ctx.db.select({ facts: hosts.facts }).from(hosts).where(eq(hosts.id, row.hostId)) : [];
  const facts = readHostFacts(host?.facts);
  const assumptions = [`container user ${DEFAULT_CONTAINER_UID}:${DEFAULT_CONTAINER_UID} (the agent's default when it runs as root; otherwise its own uid)`];
  const root = facts.workspaceRoot ?? ctx.config.workspaceRoot;
  if (!facts.workspaceRoot) assumptions.push(`workspace root ${root} (the host has not reported its own)`);
  if (!row.hostId) assumptions.push("no host yet: the host label is a placeholder");
  const base = composeBase(ctx.config.rootDir);
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
