// GPU policy: an app holds its GPUs while it runs. Devices are assigned when it starts (first fit by
// free memory, placement.server.ts) and released when it is stopped, so a one-GPU host can keep
// several stopped GPU apps installed and run whichever is started; a GPU left assigned to an app
// that went down by itself is taken over by the next start. A start that finds no free GPU for an
// app that requires one is refused with the apps holding them. An app that pins its devices
// (`gpu.devices`) holds them while stopped too.
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client";
import { apps, gpuAssignments, type App } from "../../db/schema";
import { holdGpus, hostCandidates } from "./app-writes.server";
import { ServiceError } from "./errors";
import { assignGpus } from "./placement.server";

type Tx = Parameters<typeof holdGpus>[0];

/** Frees the GPUs a stopped app held (in the stop's transaction). */
export async function releaseGpus(tx: Tx, row: App): Promise<void> {
  // Pinned devices stay the app's while it is stopped.
  if (!row.gpuDevices?.length || row.gpu?.devices?.length) return;
  await holdGpus(tx, row.id, row.hostId, []);
  await tx.update(apps).set({ gpuDevices: [] }).where(eq(apps.id, row.id));
  row.gpuDevices = [];
}

/**
 * Gives an app that wants GPUs and holds none its devices on its host before it starts; returns the
 * row as it now is. An optional GPU that is not free starts the app without one.
 */
export async function claimGpus(db: Db, row: App): Promise<App> {
  const mode = row.gpu?.mode ?? "none";
  if (mode === "none" || !row.hostId || (row.gpuDevices?.length ?? 0) > 0) return row;
  const [host] = await hostCandidates(db, row.hostId);
  if (!host) return row;
  const holders = host.heldGpus.length
    ? await db
        .select({ device: gpuAssignments.device, appId: apps.id, name: apps.name, status: apps.status, gpu: apps.gpu })
        .from(gpuAssignments)
        .innerJoin(apps, eq(apps.id, gpuAssignments.appId))
        .where(and(eq(gpuAssignments.hostId, row.hostId), inArray(gpuAssignments.device, host.heldGpus)))
    : [];
  // A GPU still assigned to an app that is down (it crashed, or its own start was refused) does
  // not block a start: only running or starting apps hold their GPUs, and apps that pin them.
  const active = holders.filter((h) => h.status !== "STOPPED" || (h.gpu?.devices?.length ?? 0) > 0);
  const a = assignGpus(host.facts, active.map((h) => h.device), row.gpu ?? undefined);
  if ("reason" in a) {
    const who = active.map((h) => `GPU ${h.device} is held by ${h.name}`).join(", ");
    throw ServiceError.field("CONFLICT", "gpu", `no GPU for this app now: ${a.reason}${who ? ` (${who}; stop one of them first)` : ""}`);
  }
  if (a.devices.length === 0) return row;
  const stale = holders.filter((h) => !active.includes(h) && a.devices.includes(h.device));
  return db.transaction(async (tx) => {
    for (const h of stale) {
      await tx.delete(gpuAssignments).where(and(eq(gpuAssignments.appId, h.appId), eq(gpuAssignments.device, h.device)));
      const [other] = await tx.select({ gpuDevices: apps.gpuDevices }).from(apps).where(eq(apps.id, h.appId));
      await tx.update(apps).set({ gpuDevices: (other?.gpuDevices ?? []).filter((d) => d !== h.device) }).where(eq(apps.id, h.appId));
    }
    await holdGpus(tx, row.id, row.hostId, a.devices);
    const [updated] = await tx.update(apps).set({ gpuDevices: a.devices }).where(eq(apps.id, row.id)).returning();
    return updated ?? row;
  });
}
