// Dependency checks end to end: repositories served over smart HTTP, deployed by a real agent on
// the real Docker engine, the console checking their manifests against a local OSV-compatible
// server fed from real OSV records. jinja2==2.10 shows the sandbox-escape advisory with its fixed
// version; an advisory added to the server later is found by the re-check (3 s here) and raises a
// notification; with OSV down a deploy still succeeds and the check is retried until OSV is back.
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/net";
import { osvFixture, startOsvServer, type OsvServer } from "../support/osv-server";
import { parsePrometheusText, sampleValue } from "../support/prom";
import { WebhookReceiver } from "../support/webhook-receiver";
import { waitFor } from "./agents";
import { startStack, type AppItem, type Stack } from "./stack-support";

interface Vuln {
  id: string;
  aliases: string[];
  package: string;
  version: string;
  ecosystem: string;
  severity: string;
  fixedIn: string | null;
  url: string;
}
interface Report {
  items: Vuln[];
  scan: { state: string; error: string | null; packages: number; pinned: number; manifests: string[]; commitSha: string } | null;
}

const SECRET = "scan-test-signing-secret-0000";
let s: Stack;
let osv: OsvServer;
const rx = new WebhookReceiver();

const report = async (name: string) => (await s.c.query<Report>("apps.vulnerabilities", { name })).body.result?.data;
const app = async (name: string) => (await s.c.query<AppItem>("apps.get", { name })).body.result?.data;
const alerts = () => rx.json("/hook").filter((b) => b.event === "vulnerability");

async function deploy(name: string, files: Record<string, string>): Promise<string> {
  const repo = await s.git.createRepo(name, { "index.html": "ok\n", ...files });
  const port = await freePort();
  const r = await s.c.mutate("apps.create", { name, repository: s.repoUrl(name), startCommand: "httpd -f -p $PORT -h /app", port, hostId: s.hostId });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return repo.sha;
}

beforeAll(async () => {
  // GHSA-x84v-xcm2-53pg (requests, critical) is held back: it "is published" during the test.
  osv = await startOsvServer(["GHSA-462w-v97r-4m45", "PYSEC-2019-217", "GHSA-g3rq-g295-4j3m", "GHSA-35jh-r3h4-6jhm", "GHSA-vh95-rmgr-6w4m"]);
  await rx.up();
  s = await startStack({ DCC_OSV_URL: osv.url, DCC_OSV_RECHECK_S: "3" });
  const t = await s.c.mutate("notifications.create", { kind: "json", url: `${rx.url}/hook`, secret: SECRET, events: ["vulnerability"] });
  expect(t.status).toBe(200);
});
afterAll(async () => {
  await s?.close();
  await osv?.close();
  await rx.down();
});

describe("dependency scanning against OSV", () => {
  it("a repo pinning jinja2==2.10 shows the sandbox escape advisory with its fixed version", async () => {
    const sha = await deploy("scan-jinja", {
      "requirements.txt": "-r requirements-base.txt\njinja2==2.10\ntorch>=2.0\n",
      "requirements-base.txt": "requests==2.19.1\n",
      "ui/package-lock.json": JSON.stringify({ lockfileVersion: 3, packages: { "": { name: "ui" }, "node_modules/lodash": { version: "4.17.20" } } }),
    });
    await waitFor("RUNNING", async () => (await app("scan-jinja"))?.status === "RUNNING", 60_000, 200);
    const r = await waitFor("findings", async () => {
      const x = await report("scan-jinja");
      return x?.scan?.state === "done" && x;
    }, 30_000, 250);
    expect(r.scan).toMatchObject({ commitSha: sha, packages: 4, pinned: 3, manifests: expect.arrayContaining(["requirements.txt", "requirements-base.txt", "ui/package-lock.json"]) });
    const jinja = r.items.find((v) => v.id === "GHSA-462w-v97r-4m45");
    expect(jinja).toMatchObject({
      package: "jinja2",
      version: "2.10",
      ecosystem: "PyPI",
      severity: "high",
      fixedIn: "2.10.1",
      url: "https://osv.dev/vulnerability/GHSA-462w-v97r-4m45",
    });
    expect(jinja!.aliases).toEqual(expect.arrayContaining(["CVE-2019-10906", "PYSEC-2019-217"]));
    // One flaw, one finding: PYSEC-2019-217 is the same advisory under another id.
    expect(r.items.map((v) => v.id).sort()).toEqual(["GHSA-35jh-r3h4-6jhm", "GHSA-462w-v97r-4m45", "GHSA-g3rq-g295-4j3m"]);
    expect(r.items.find((v) => v.id === "GHSA-g3rq-g295-4j3m")).toMatchObject({ severity: "medium", fixedIn: "2.11.3" });
    expect(r.items.find((v) => v.id === "GHSA-35jh-r3h4-6jhm")).toMatchObject({ package: "lodash", ecosystem: "npm", severity: "high", fixedIn: "4.17.21" });
    expect(r.items[0]!.severity).toBe("high");

    // Batched: one querybatch for all packages, then one GET per advisory.
    expect(osv.requests.filter((p) => p === "/v1/querybatch").length).toBeGreaterThanOrEqual(1);
    expect(osv.requests).toContain("/v1/vulns/GHSA-462w-v97r-4m45");

    const metrics = parsePrometheusText(await (await fetch(`${s.c.url}/metrics`)).text());
    expect(sampleValue(metrics, "dcc_app_vulnerabilities", { app: "scan-jinja", severity: "high" })).toBe(2);
    expect(sampleValue(metrics, "dcc_app_vulnerabilities", { app: "scan-jinja", severity: "medium" })).toBe(1);

    // The two high findings were new: one signed alert each; the medium one raises none.
    const got = await waitFor("two alerts", () => alerts().length >= 2 && alerts(), 20_000);
    expect(got.map((b) => (b.detail as { id: string }).id).sort()).toEqual(["GHSA-35jh-r3h4-6jhm", "GHSA-462w-v97r-4m45"]);
    const raw = rx.received.find((x) => x.body.includes("GHSA-462w-v97r-4m45"))!;
    const sig = "sha256=" + createHmac("sha256", SECRET).update(`${raw.headers["x-dcc-timestamp"]}.${raw.body}`).digest("hex");
    expect(raw.headers["x-dcc-signature"]).toBe(sig);
  });

  it("an advisory published later is found by the re-check and raises an alert for the running app", async () => {
    osv.add(osvFixture("GHSA-x84v-xcm2-53pg"));
    const r = await waitFor("the re-check finding", async () => {
      const x = await report("scan-jinja");
      return x?.items.find((v) => v.id === "GHSA-x84v-xcm2-53pg");
    }, 30_000, 250);
    expect(r).toMatchObject({ package: "requests", version: "2.19.1", severity: "critical", fixedIn: "2.20.0", aliases: ["CVE-2018-18074"] });
    const alert = await waitFor("its alert", () => alerts().find((b) => (b.detail as { id: string }).id === "GHSA-x84v-xcm2-53pg"), 20_000);
    expect(alert).toMatchObject({ app: "scan-jinja", detail: { severity: "critical", fixedIn: "2.20.0" } });
    // Findings already known are not alerted again by the re-check.
    await new Promise((res) => setTimeout(res, 4000));
    expect(alerts().filter((b) => (b.detail as { id: string }).id === "GHSA-462w-v97r-4m45")).toHaveLength(1);
    expect((await app("scan-jinja"))?.status).toBe("RUNNING");
  });

  it("OSV down: the deploy still succeeds, the check fails and is retried until OSV answers", async () => {
    osv.setDown(true);
    const from = osv.requests.length;
    await deploy("scan-npm", { "package-lock.json": JSON.stringify({ lockfileVersion: 1, dependencies: { minimist: { version: "1.2.0" } } }) });
    await waitFor("RUNNING while OSV is down", async () => (await app("scan-npm"))?.status === "RUNNING", 60_000, 200);
    const failed = await waitFor("the failed check", async () => {
      const x = await report("scan-npm");
      return x?.scan?.state === "failed" && x;
    }, 30_000, 250);
    expect(failed.scan!.error).toMatch(/503/);
    expect(failed.items).toEqual([]);
    await waitFor("a retry", () => osv.requests.slice(from).filter((p) => p === "/v1/querybatch").length >= 2, 30_000, 250);
    osv.setDown(false);
    const r = await waitFor("findings once OSV is back", async () => {
      const x = await report("scan-npm");
      return x?.scan?.state === "done" && x;
    }, 60_000, 250);
    expect(r.items).toEqual([expect.objectContaining({ id: "GHSA-vh95-rmgr-6w4m", package: "minimist", version: "1.2.0", fixedIn: "1.2.3", severity: "medium" })]);
  });

  it("apps.vulnerabilities: NOT_FOUND for a missing app, BAD_REQUEST naming the field", async () => {
    expect((await s.c.query("apps.vulnerabilities", { name: "nope" })).body.error?.data.code).toBe("NOT_FOUND");
    const bad = await s.c.query("apps.vulnerabilities", { name: "Not A Name" });
    expect(bad.body.error?.data.code).toBe("BAD_REQUEST");
    expect(Object.keys(bad.body.error!.data.fields ?? {})).toEqual(["name"]);
  });
});
