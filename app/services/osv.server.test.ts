import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareVersions, cvssScore, fixedVersionFor, severityOf, severityOfScore, type OsvRecord } from "./osv.server";

const record = (id: string) => JSON.parse(readFileSync(join(import.meta.dirname, "../../tests/fixtures/osv", `${id}.json`), "utf8")) as OsvRecord;

describe("severity mapping", () => {
  it("CVSS base scores map to FIRST's bands", () => {
    expect([0, 0.1, 3.9, 4, 6.9, 7, 8.9, 9, 10].map(severityOfScore)).toEqual(["unknown", "low", "low", "medium", "medium", "high", "high", "critical", "critical"]);
  });

  it("reads CVSS v3.0, v3.1, v4.0 and v2 vectors; garbage is null", () => {
    expect(cvssScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:N")).toBe(8.6);
    expect(cvssScore("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")).toBe(9.8);
    expect(cvssScore("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")).toBe(9.3);
    expect(cvssScore("AV:N/AC:L/Au:N/C:P/I:P/A:P")).toBe(7.5);
    expect(cvssScore("not a vector")).toBeNull();
  });

  it("real OSV records: the CVSS vector wins, else the database's word, else unknown", () => {
    expect(severityOf(record("GHSA-462w-v97r-4m45"))).toEqual({ severity: "high", score: 8.6 });
    expect(severityOf(record("GHSA-x84v-xcm2-53pg"))).toEqual({ severity: "critical", score: 9.8 });
    expect(severityOf(record("GHSA-g3rq-g295-4j3m"))).toEqual({ severity: "medium", score: 5.3 });
    expect(severityOf(record("GHSA-vh95-rmgr-6w4m"))).toEqual({ severity: "medium", score: 5.6 });
    expect(severityOf({ ...record("GHSA-35jh-r3h4-6jhm"), severity: undefined })).toEqual({ severity: "high", score: null });
    expect(severityOf({ ...record("GHSA-vh95-rmgr-6w4m"), severity: undefined })).toEqual({ severity: "medium", score: null });
    // PYSEC records carry no severity at all.
    expect(severityOf(record("PYSEC-2019-217"))).toEqual({ severity: "unknown", score: null });
  });
});

describe("fixed version", () => {
  it("the end of the range that holds the version, by ecosystem and normalized name", () => {
    expect(fixedVersionFor(record("GHSA-462w-v97r-4m45"), { ecosystem: "PyPI", name: "Jinja2", version: "2.10" })).toBe("2.10.1");
    expect(fixedVersionFor(record("GHSA-vh95-rmgr-6w4m"), { ecosystem: "npm", name: "minimist", version: "0.0.8" })).toBe("0.2.1");
    expect(fixedVersionFor(record("GHSA-vh95-rmgr-6w4m"), { ecosystem: "npm", name: "minimist", version: "1.2.0" })).toBe("1.2.3");
    expect(fixedVersionFor(record("GHSA-462w-v97r-4m45"), { ecosystem: "npm", name: "jinja2", version: "2.10" })).toBeNull();
  });

  it("orders PEP 440 and semver versions well enough to pick a fix", () => {
    expect(compareVersions("2.10", "2.9.6")).toBe(1);
    expect(compareVersions("2.10", "2.10.0")).toBe(0);
    expect(compareVersions("2.10rc1", "2.10")).toBe(-1);
    expect(compareVersions("1.0.0-alpha", "1.0.0")).toBe(-1);
    expect(compareVersions("1.0.post1", "1.0")).toBe(1);
  });
});
