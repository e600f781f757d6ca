import type { ProcedureMeta } from "./init";
import { appRouter, STREAMS } from "./root";

describe("the router's stream map", () => {
  it("lists every subscription with the role its builder demands, and nothing else", () => {
    const procedures = appRouter._def.procedures as unknown as Record<string, { _def: { type: string; meta?: ProcedureMeta } }>;
    const subscriptions = Object.fromEntries(
      Object.entries(procedures)
        .filter(([, p]) => p._def.type === "subscription")
        .map(([path, p]) => [path, p._def.meta?.minRole]),
    );
    expect(subscriptions).toEqual(STREAMS);
  });
});
