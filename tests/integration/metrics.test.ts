// The console's Prometheus endpoint as a scraper sees it: public, valid exposition text, and its
// dcc_… series move with real API calls (apps by status, hosts, commands written to the outbox,
// event lag of local and other-process changes, HTTP requests).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConsole, type RunningConsole } from "../support/console";
import { parsePrometheusText, sampleSum, sampleValue, type Family } from "../support/prom";
import { waitFor } from "../support/docker";

const ADMIN = "metrics-test-admin-token-0123456789";
const auth = { authorization: `Bearer ${ADMIN}` };
let c: RunningConsole;

async function scrape(): Promise<Map<string, Family>> {
  const r = await fetch(`${c.url}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await r.text());
}

const lagCount = (f: Map<string, Family>) => sampleValue(f, "dcc_event_lag_seconds", {}, "dcc_event_lag_seconds_count") ?? 0;

beforeAll(async () => {
  c = await startConsole({ env: { DCC_ADMIN_TOKEN: ADMIN } });
});
afterAll(async () => {
  await c?.dispose();
});

describe("GET /metrics", () => {
  it("answers without sign-in, as Prometheus text with dcc_ series and the Node process metrics", async () => {
    const f = await scrape();
    for (const [name, type] of [
      ["dcc_apps", "gauge"],
      ["dcc_hosts_online", "gauge"],
      ["dcc_hosts_total", "gauge"],
      ["dcc_commands_enqueued_total", "counter"],
      ["dcc_commands_total", "counter"],
      ["dcc_command_latency_seconds", "histogram"],
      ["dcc_event_lag_seconds", "histogram"],
      ["dcc_http_requests_total", "counter"],
      ["process_cpu_seconds_total", "counter"],
      ["nodejs_heap_size_used_bytes", "gauge"],
    ] as const) {
      expect(f.get(name)?.type, name).toBe(type);
    }
    for (const status of ["RUNNING", "STARTING", "STOPPED"]) expect(sampleValue(f, "dcc_apps", { status })).toBe(0);
    expect(sampleValue(f, "dcc_hosts_total")).toBe(0);
    expect(sampleValue(f, "dcc_database_up")).toBe(1);
    // startConsole polled /healthz until it answered
    expect(sampleValue(f, "dcc_http_requests_total", { method: "GET", route: "/healthz", status: "200" })).toBeGreaterThanOrEqual(1);
  });

  it("moves with real actions through the API", async () => {
    const before = await scrape();
    const base = { repository: "https://github.com/example/webui.git", startCommand: "python main.py --port ${PORT}" };
    const waiting = await c.mutate<{ status: string }>("apps.create", { ...base, name: "no-host", port: 7860 }, auth);
    expect(waiting.body.result!.data.status).toBe("STOPPED"); // no host known yet: waiting for one
    // An enrolled, connected host as the hub records it (no agent process is needed to queue commands).
    await c.db().execute("INSERT INTO hosts (id, name, online, facts) VALUES ('host-m1', 'gpu-m1', 1, '{}'), ('host-m2', 'gpu-m2', 0, '{}')");
    const placed = await c.mutate<{ status: string }>("apps.create", { ...base, name: "placed", port: 7861, hostId: "host-m1" }, auth);
    expect(placed.status).toBe(200);
    expect(placed.body.result!.data.status).toBe("STARTING");
    expect((await c.mutate("apps.stop", { name: "placed" }, auth)).status).toBe(200);
    expect((await c.mutate("apps.create", { ...base, name: "Bad Name", port: 7862 }, auth)).status).toBe(400);

    const after = await scrape();
    expect(sampleValue(after, "dcc_apps", { status: "STOPPED" })).toBe(1);
    expect(sampleValue(after, "dcc_apps", { status: "STARTING" })).toBe(1);
    expect(sampleValue(after, "dcc_apps", { status: "RUNNING" })).toBe(0);
    expect(sampleValue(after, "dcc_hosts_total")).toBe(2);
    expect(sampleValue(after, "dcc_hosts_online")).toBe(1);
    expect(sampleValue(after, "dcc_commands_enqueued_total", { action: "provision" })).toBe(1);
    expect(sampleValue(after, "dcc_commands_enqueued_total", { action: "stop" })).toBe(1);
    expect(sampleValue(after, "dcc_commands_outbox", { state: "pending" })).toBe(2);
    // created, created, action: three recorded changes published to this process's subscribers
    expect(lagCount(after) - lagCount(before)).toBe(3);
    const posts = (f: Map<string, Family>, status: string) => sampleSum(f, "dcc_http_requests_total", { method: "POST", route: "/api/trpc", status });
    expect(posts(after, "200") - posts(before, "200")).toBe(3);
    expect(posts(after, "400") - posts(before, "400")).toBe(1);
  });

  it("times a change written by another console process from its record to its publication here", async () => {
    const before = await scrape();
    const le1 = (f: Map<string, Family>) => sampleValue(f, "dcc_event_lag_seconds", { le: "1" }, "dcc_event_lag_seconds_bucket") ?? 0;
    const sum = (f: Map<string, Family>) => sampleValue(f, "dcc_event_lag_seconds", {}, "dcc_event_lag_seconds_sum") ?? 0;
    // As another process would: an event row only (this one recorded 2 s ago), found by the tail.
    const at = new Date(Date.now() - 2000).toISOString();
    await c.db().execute({ sql: "INSERT INTO app_events (app_name, type, data, created_at) VALUES ('placed', 'status', '{\"status\":\"RUNNING\"}', ?)", args: [at] });
    const after = await waitFor(async () => {
      const f = await scrape();
      return lagCount(f) > lagCount(before) ? f : null;
    }, { timeoutMs: 10_000, intervalMs: 200, message: "event lag observed for the tailed event" });
    expect(lagCount(after) - lagCount(before)).toBe(1);
    expect(le1(after)).toBe(le1(before)); // it waited ≥ 2 s, so it is not in the ≤ 1 s bucket
    expect(sum(after) - sum(before)).toBeGreaterThanOrEqual(2);
  });
});
