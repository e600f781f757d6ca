// hostApps: what the Hosts page shows of each host's apps, on a real libSQL file with the migrations.
import { afterAll, describe, expect, it } from "vitest";
import { apps, hosts } from "../../db/schema";
import { migratedDb } from "../../tests/support/db";
import { hostApps } from "./hosts.server";

const file = await migratedDb("dcc-host-apps-");
const { db } = file;
afterAll(() => file.dispose());

describe("hostApps (the Hosts page's apps per host)", () => {
  it("counts every app per status, lists the first by name, and finds every GPU holder", async () => {
    await db.insert(hosts).values([
      { id: "h1", name: "big", online: true },
      { id: "h2", name: "small", online: true },
    ]);
    const row = (name: string, hostId: string | null, port: number, status: "RUNNING" | "STOPPED" | "STARTING", gpuDevices: string[] = []) => ({
      id: `id-${name}`, name, repository: "https://example.com/r.git", startCommand: "run", port, hostId, status, gpuDevices,
    });
    await db.insert(apps).values([
      ...Array.from({ length: 30 }, (_, i) => row(`app-${String(i).padStart(2, "0")}`, "h1", 3000 + i, i % 3 === 0 ? "RUNNING" : "STOPPED")),
      row("zz-gpu", "h1", 4000, "STARTING", ["0"]),
      row("only", "h2", 3000, "RUNNING"),
      row("waiting", null, 5000, "STOPPED"),
    ]);
    const r = await hostApps({ db }, 25);
    expect(Object.keys(r).sort()).toEqual(["h1", "h2"]);
    expect(r.h1!.total).toBe(31);
    expect(r.h1!.byStatus).toEqual({ RUNNING: 10, STOPPED: 20, STARTING: 1 });
    expect(r.h1!.listed.map((a) => a.name)).toEqual(Array.from({ length: 25 }, (_, i) => `app-${String(i).padStart(2, "0")}`));
    expect(r.h1!.listed[0]).toEqual({ name: "app-00", status: "RUNNING", health: "unknown", phase: null, lastError: null });
    // Past the listed ones, a GPU holder is still named against its GPU.
    expect(r.h1!.gpuHolders).toEqual([{ name: "zz-gpu", gpuDevices: ["0"] }]);
    expect(r.h2).toEqual({ total: 1, byStatus: { RUNNING: 1 }, listed: [expect.objectContaining({ name: "only" })], gpuHolders: [] });
  });
});
