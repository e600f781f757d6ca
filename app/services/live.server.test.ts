import { afterAll, describe, expect, it } from "vitest";
import { migratedDb, type MigratedDb } from "../../tests/support/db";
import { ChangeBus, type AppChange } from "../context.server";
import { changeStream } from "./live.server";

/** Collects what a subscriber is sent for the changes published by `publish`. */
async function collect(publish: (bus: ChangeBus) => void, count: number): Promise<AppChange[]> {
  const bus = new ChangeBus();
  const ac = new AbortController();
  const got: AppChange[] = [];
  const stream = changeStream({ bus, db: null as never }, { signal: ac.signal });
  const first = stream.next(); // subscribes
  await new Promise((r) => setImmediate(r));
  publish(bus);
  const r = await first;
  if (!r.done) got.push(r.value);
  while (got.length < count) {
    const n = await Promise.race([stream.next(), new Promise<null>((res) => setTimeout(() => res(null), 200))]);
    if (!n || n.done) break;
    got.push(n.value);
  }
  ac.abort();
  return got;
}

describe("changeStream", () => {
  it("sends another process's change that arrives after a newer local one (ids are not in order across processes)", async () => {
    const got = await collect((bus) => {
      bus.publish({ id: 105, type: "status", app: "a", status: "RUNNING" }); // local, published at once
      bus.publish({ id: 104, type: "status", app: "b", status: "STOPPED" }); // the other process's, via the table tail
    }, 2);
    expect(got.map((c) => c.id)).toEqual([105, 104]);
  });

  it("sends a stored change once, and transient ones (id 0) every time", async () => {
    const got = await collect((bus) => {
      bus.publish({ id: 7, type: "status", app: "a" });
      bus.publish({ id: 7, type: "status", app: "a" });
      bus.publish({ id: 0, type: "usage", app: "a" });
      bus.publish({ id: 0, type: "usage", app: "a" });
    }, 4);
    expect(got.map((c) => c.id)).toEqual([7, 0, 0]);
  });
});

describe("changeStream bounds (real libSQL file)", () => {
  const files: MigratedDb[] = [];
  afterAll(() => files.forEach((f) => f.dispose()));
  async function freshDb() {
    const f = await migratedDb("dcc-live-");
    files.push(f);
    return f.db;
  }

  it("drops a viewer that falls behind, and a resume by last-event id misses nothing", async () => {
    const { recordEvent } = await import("./events.server");
    const db = await freshDb();
    const bus = new ChangeBus();
    const ac = new AbortController();
    const slow = changeStream({ bus, db }, { signal: ac.signal, maxQueue: 20 });
    const first = slow.next();
    await new Promise((r) => setImmediate(r));
    const published: number[] = [];
    for (let i = 0; i < 60; i++) {
      const c = await recordEvent(db, { appId: null, appName: "a", type: "status", data: { n: i } });
      published.push(c.id);
      bus.publish(c);
    }
    const got = [(await first).value!.id];
    // The viewer never took more: its queue overflowed, so the stream ends instead of buffering on.
    expect((await slow.next()).done).toBe(true);
    // Its browser reconnects with the last id it has: the table fills the gap, in order, once.
    const resumed = changeStream({ bus, db }, { lastEventId: got[0], signal: ac.signal });
    for (let i = 1; i < published.length; i++) got.push((await resumed.next()).value!.id);
    expect(got).toEqual(published);
    ac.abort();
  });

  it("a resume from too far back gets resync instead of a replay of the whole table", async () => {
    const { recordEvent } = await import("./events.server");
    const db = await freshDb();
    const ids: number[] = [];
    for (let i = 0; i < 30; i++) ids.push((await recordEvent(db, { appId: null, appName: "a", type: "status", data: { n: i } })).id);
    const ac = new AbortController();
    const s = changeStream({ bus: new ChangeBus(), db }, { lastEventId: 0, maxReplay: 10, signal: ac.signal });
    const first = (await s.next()).value!;
    expect(first).toMatchObject({ type: "resync", id: 0, latest: ids.at(-1) });
    // Within the window it replays as usual.
    const s2 = changeStream({ bus: new ChangeBus(), db }, { lastEventId: ids[24], maxReplay: 10, signal: ac.signal });
    expect((await s2.next()).value!.id).toBe(ids[25]);
    ac.abort();
  });
});
