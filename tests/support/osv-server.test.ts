import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { osvQueryBatch, osvVuln } from "../../app/services/osv.server";
import { startOsvServer, type OsvServer } from "./osv-server";

let osv: OsvServer;
beforeAll(async () => {
  osv = await startOsvServer();
});
afterAll(() => osv?.close());

describe("local OSV server (real records) through the console's OSV client", () => {
  it("matches versions by range and listed versions, per ecosystem, like api.osv.dev", async () => {
    const r = await osvQueryBatch(osv.url, [
      { ecosystem: "PyPI", name: "Jinja2", version: "2.10" },
      { ecosystem: "PyPI", name: "jinja2", version: "2.10.1" },
      { ecosystem: "PyPI", name: "jinja2", version: "3.1.6" },
      { ecosystem: "npm", name: "minimist", version: "1.2.0" },
      { ecosystem: "npm", name: "minimist", version: "1.2.3" },
      { ecosystem: "npm", name: "jinja2", version: "2.10" },
    ]);
    expect(r.map((v) => v.map((x) => x.id).sort())).toEqual([
      ["GHSA-462w-v97r-4m45", "GHSA-g3rq-g295-4j3m", "PYSEC-2019-217"],
      ["GHSA-g3rq-g295-4j3m"],
      [],
      ["GHSA-vh95-rmgr-6w4m"],
      [],
      [],
    ]);
    expect((await osvVuln(osv.url, "GHSA-462w-v97r-4m45")).aliases).toContain("CVE-2019-10906");
  });

  it("down: 503, which the client reports as an error", async () => {
    osv.setDown(true);
    await expect(osvQueryBatch(osv.url, [{ ecosystem: "PyPI", name: "jinja2", version: "2.10" }])).rejects.toThrow(/503/);
    osv.setDown(false);
  });
});
