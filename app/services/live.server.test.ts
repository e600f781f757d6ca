import { describe, expect, it } from "vitest";
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
