// Images on a host before its apps need them. `hosts.prepull { id, image? }` (admin) and, unless
// DCC_PREPULL_ON_ENROL is off, the enrolment of a new host queue the host-wide `prepull` command
// for the image (default: the console's base image, DCC_BASE_IMAGE), so the first app on a fresh
// GPU box does not wait for a 10 GB pull. The agent answers with `progress` (bytes, percent, layer)
// while it pulls; the newest pre-pull of each host is kept on its row (`hosts.pull`) for the hosts
// page. A pull that is part of an app's deploy reports on the app instead (see pullPhase).
import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { HostIdSchema } from "../../agent/src/contract/protocol";
import type { Progress } from "../../agent/src/contract/reports";
import { ImageSchema } from "../../agent/src/contract/validation";
import type { Db } from "../../db/client";
import { commands, hosts, type HostPull } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { enqueueCommand } from "./commands.server";
import { ServiceError } from "./errors";
import { formatBytes } from "../../agent/src/contract/units";

export const HostPrepullInput = z.strictObject({ id: HostIdSchema, image: ImageSchema.optional() });

/** Who automatic pre-pulls are recorded as. */
export const ENROL_PREPULL_ACTOR: Actor = { kind: "system", id: "enrolment", role: "admin" };

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
const nowIso = () => new Date().toISOString();

export interface PrepullRequested {
  commandId: string;
  image: string;
  /** The host is offline: the command waits in the outbox until it connects. */
  queued: boolean;
  /** The same image was already on its way to this host: that command is returned. */
  existing: boolean;
}

/** Queues a pre-pull of `image` (default: the console's base image) on the host. */
export async function prepullHost(ctx: ConsoleContext, actor: Actor, input: z.infer<typeof HostPrepullInput>): Promise<PrepullRequested> {
  const image = input.image ?? ctx.config.baseImage;
  if (!ImageSchema.safeParse(image).success) throw ServiceError.field("BAD_REQUEST", "image", "is not a valid image reference");
  const [host] = await ctx.db.select().from(hosts).where(eq(hosts.id, input.id));
  if (!host) throw ServiceError.field("NOT_FOUND", "id", `does not name a known host (${input.id})`);
  if (host.revokedAt) throw ServiceError.field("PRECONDITION_FAILED", "id", "names a revoked host");
  const queued = !host.online;
  const open = await ctx.db
    .select({ id: commands.id, params: commands.params })
    .from(commands)
    .where(and(eq(commands.hostId, host.id), eq(commands.action, "prepull"), inArray(commands.state, ["pending", "delivered"])));
  const same = open.find((c) => c.params.image === image);
  if (same) return { commandId: same.id, image, queued, existing: true };
  let commandId = "";
  await ctx.db.transaction(async (tx) => {
    commandId = await enqueueCommand(tx, actor, { hostId: host.id, appId: null, appName: null, action: "prepull", params: { image } }, ctx.metrics);
    const pull: HostPull = { commandId, image, state: "queued", pct: null, bytes: null, layer: null, message: null, requestedBy: `${actor.kind}:${actor.id}`, updatedAt: nowIso() };
    await tx.update(hosts).set({ pull }).where(eq(hosts.id, host.id));
    await recordAudit(tx, actor, { action: "host.prepull", target: host.id, detail: { commandId, image } });
  });
  ctx.dispatcher.kick(host.id);
  return { commandId, image, queued, existing: false };
}

/** The automatic pre-pull of a host that just enrolled (DCC_PREPULL_ON_ENROL, on by default). */
export async function prepullOnEnrol(ctx: ConsoleContext, hostId: string): Promise<PrepullRequested | null> {
  if (!ctx.config.prepullOnEnrol) return null;
  return prepullHost(ctx, ENROL_PREPULL_ACTOR, { id: hostId });
}

/** A `progress` report of a host's `prepull` command: the host row's pull figure moves on. */
export async function prepullProgress(db: Db, hostId: string, commandId: string, p: Progress): Promise<void> {
  const [host] = await db.select({ pull: hosts.pull }).from(hosts).where(eq(hosts.id, hostId));
  if (!host?.pull || host.pull.commandId !== commandId) return;
  const pull: HostPull = {
    ...host.pull,
    state: "pulling",
    pct: p.pct ?? host.pull.pct,
    bytes: p.bytes ?? host.pull.bytes,
    layer: p.layer ?? null,
    message: p.message ?? host.pull.message,
    updatedAt: nowIso(),
  };
  await db.update(hosts).set({ pull }).where(eq(hosts.id, hostId));
}

/** The command's end, in the same transaction as its row: done (pulled, or already there) or failed. */
export async function prepullFinished(tx: Tx, hostId: string, commandId: string, r: { ok: boolean; result?: Record<string, unknown>; error?: string }): Promise<void> {
  const [host] = await tx.select({ pull: hosts.pull }).from(hosts).where(eq(hosts.id, hostId));
  if (!host?.pull || host.pull.commandId !== commandId) return;
  const message = r.ok ? (typeof r.result?.message === "string" ? r.result.message : "done") : (r.error ?? "failed");
  const pull: HostPull = { ...host.pull, state: r.ok ? "done" : "failed", pct: r.ok ? 100 : host.pull.pct, layer: null, message: message.slice(0, 1000), updatedAt: nowIso() };
  await tx.update(hosts).set({ pull }).where(eq(hosts.id, hostId));
}


/** An app's phase while its deploy pulls the image: what its row and the hosts page show. */
export function pullPhase(p: Pick<Progress, "pct" | "bytes">): string {
  const size = p.bytes && p.bytes.total > 0 ? ` · ${formatBytes(p.bytes.done)} of ${formatBytes(p.bytes.total)}` : "";
  return `pulling image${p.pct !== undefined ? ` ${p.pct}%` : ""}${size}`;
}

/** Pull sizes for the hosts page (decimal, as Docker prints them). */
export { formatBytes };
