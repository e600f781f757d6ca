import { afterAll, describe, expect, it } from "vitest";
import { migratedDb } from "../../tests/support/db";
import { parsePrometheusText, sampleValue } from "../../tests/support/prom";
import { ChangeBus } from "../context.server";
import { createConsoleMetrics, routeLabel } from "./metrics.server";

const file = await migratedDb("dcc-metrics-");
const { db } = file;
afterAll(() => file.dispose());

describe("console metrics", () => {
  it("counts command results by action and outcome and times them", async () => {
    const m = createConsoleMetrics({ db, defaults: false });
    m.observeCommandResult("provision", "done", 1.5);
    m.observeCommandResult("provision", "done", 0.02);
    m.observeCommandResult("stop", "failed", 3);
    m.observeCommandResult("<script>", "weird", 1);
    const f = parsePrometheusText(await m.scrape());
    expect(f.get("dcc_commands_total")?.type).toBe("counter");
    expect(sampleValue(f, "dcc_commands_total", { action: "provision", outcome: "done" })).toBe(2);
    expect(sampleValue(f, "dcc_commands_total", { action: "stop", outcome: "failed" })).toBe(1);
    expect(sampleValue(f, "dcc_commands_total", { action: "other", outcome: "other" })).toBe(1);
    expect(sampleValue(f, "dcc_command_latency_seconds", { action: "provision" }, "dcc_command_latency_seconds_count")).toBe(2);
    expect(sampleValue(f, "dcc_command_latency_seconds", { action: "provision" }, "dcc_command_latency_seconds_sum")).toBeCloseTo(1.52);
    expect(sampleValue(f, "dcc_command_latency_seconds", { action: "provision", le: "0.05" }, "dcc_command_latency_seconds_bucket")).toBe(1);
  });

  it("reads apps and hosts from the database at scrape time", async () => {
    const m = createConsoleMetrics({ db, defaults: false });
    let f = parsePrometheusText(await m.scrape());
    expect(sampleValue(f, "dcc_apps", { status: "RUNNING" })).toBe(0);
    expect(sampleValue(f, "dcc_database_up")).toBe(1);
    await db.$client.execute("INSERT INTO hosts (id, name, online) VALUES ('h1', 'gpu-1', 1), ('h2', 'gpu-2', 0)");
    await db.$client.execute(
      "INSERT INTO apps (id, name, repository, start_command, port, host_id, status) VALUES ('a1', 'one', 'https://x.test/r.git', 'run', 7860, 'h1', 'RUNNING')",
    );
    f = parsePrometheusText(await m.scrape());
    expect(sampleValue(f, "dcc_apps", { status: "RUNNING" })).toBe(1);
    expect(sampleValue(f, "dcc_apps", { status: "STOPPED" })).toBe(0);
    expect(sampleValue(f, "dcc_hosts_online")).toBe(1);
    expect(sampleValue(f, "dcc_hosts_total")).toBe(2);
  });

  it("times each change from its record to its publication on the bus", async () => {
    const bus = new ChangeBus();
    const m = createConsoleMetrics({ db, bus, defaults: false });
    bus.publish({ id: 7, type: "status", app: "one", at: new Date(Date.now() - 300).toISOString() });
    bus.publish({ id: 0, type: "usage", app: "one" }); // transient: not a recorded change
    const f = parsePrometheusText(await m.scrape());
    expect(sampleValue(f, "dcc_event_lag_seconds", {}, "dcc_event_lag_seconds_count")).toBe(1);
    expect(sampleValue(f, "dcc_event_lag_seconds", {}, "dcc_event_lag_seconds_sum")).toBeGreaterThanOrEqual(0.3);
    expect(sampleValue(f, "dcc_event_lag_seconds", { le: "0.2" }, "dcc_event_lag_seconds_bucket")).toBe(0);
  });

  it("labels HTTP routes by shape, never by the raw path", () => {
    expect(routeLabel("/api/trpc/apps.create?batch=1")).toBe("/api/trpc");
    expect(routeLabel("/apps/webui")).toBe("/apps/:name");
    expect(routeLabel("/apps/webui/action")).toBe("/apps/:name/action");
    expect(routeLabel("/apps/new")).toBe("/apps/new");
    expect(routeLabel("/hosts")).toBe("/hosts");
    expect(routeLabel("/build/entry.client-ABC.js")).toBe("/build/*");
    expect(routeLabel("/hooks/deploy/webui")).toBe("/hooks/deploy/:app");
    expect(routeLabel("/hooks/deploy/a/b")).toBe("other");
    expect(routeLabel("/auth/oidc/callback?code=x")).toBe("/auth/oidc/callback");
    expect(routeLabel("/wp-admin/x.php")).toBe("other");
    expect(routeLabel("/random-1234")).toBe("other");
  });
});
