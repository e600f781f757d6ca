// Prometheus metrics of one console process: a private prom-client registry, created once in
// app/server.ts and handed down on the ConsoleContext (the server entry and the Remix build are
// separate bundles, so a module-level registry would exist twice). Counters and histograms count
// what this process did; the dcc_apps / dcc_hosts / outbox gauges are read from the database at
// scrape time, so every process reports the same values for them.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { RequestHandler } from "express";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Db } from "../../db/client";
import { APP_STATUSES } from "../../db/schema";
import type { ChangeBus } from "../change-bus.server";
import type { LiveChange as AppChange } from "../live-event.server";

/** How a command ended, as the hub records it. */
export type CommandOutcome = "done" | "failed" | "expired" | "rejected";

export interface ConsoleMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** A command was written to the outbox. */
  commandEnqueued(action: string): void;
  /** The hub recorded a command's result; `seconds` runs from the command's creation to the result. */
  observeCommandResult(action: string, outcome: CommandOutcome | string, seconds: number): void;
  /** A change reached this process's subscribers `seconds` after it was recorded. */
  observeEventLag(seconds: number): void;
  /** The hub's current number of agent sockets in this process. */
  setAgentConnections(n: number): void;
  /** Express middleware counting requests by method, route and status. */
  http: RequestHandler;
  /** The exposition text (database gauges refreshed first). */
  scrape(): Promise<string>;
}

/** Lifecycle actions and provisioning verbs the protocol knows; anything else is counted as "other". */
const ACTIONS = new Set(["provision", "start", "stop", "restart", "reinstall", "deinstall", "update", "cleanup"]);
const OUTCOMES = new Set(["done", "failed", "expired", "rejected"]);
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

const action = (a: string) => (ACTIONS.has(a) ? a : "other");

/**
 * The route label: a fixed set of path shapes, never the raw path (an unauthenticated client could
 * otherwise create a series per URL it invents).
 */
export function routeLabel(path: string): string {
  const p = path.split("?")[0];
  if (p === "/healthz" || p === "/metrics" || p === "/agent" || p === "/") return p;
  if (p.startsWith("/api/trpc/") || p === "/api/trpc") return "/api/trpc";
  if (p.startsWith("/build/")) return "/build/*";
  const seg = p.split("/").filter(Boolean);
  if (seg[0] === "hooks" && seg[1] === "deploy" && seg.length === 3) return "/hooks/deploy/:app";
  if (p === "/auth/oidc/start" || p === "/auth/oidc/callback") return p;
  if (seg[0] === "apps" && seg.length >= 2) {
    if (seg[1] === "new" && seg.length === 2) return "/apps/new";
    if (seg.length === 2) return "/apps/:name";
    if (seg.length === 3 && /^[a-z]{1,20}$/.test(seg[2])) return `/apps/:name/${seg[2]}`;
    return "other";
  }
  if (seg.length === 1 && /^[a-z][a-z-]{0,30}$/.test(seg[0]) && KNOWN_PAGES.has(seg[0])) return `/${seg[0]}`;
  return "other";
}
const KNOWN_PAGES = new Set(["apps", "hosts", "marketplace", "audit", "login", "logout", "settings", "tokens", "users", "favicon.ico"]);

export interface MetricsOptions {
  db: Db;
  bus?: ChangeBus;
  /** Default Node process metrics (process_*, nodejs_*). */
  defaults?: boolean;
  /** Where package.json lives, for dcc_build_info's version. */
  rootDir?: string;
}

export function createConsoleMetrics(opts: MetricsOptions): ConsoleMetrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry });

  // One database read per scrape, shared by the gauges below: a scrape calls every collect()
  // synchronously, so the read is shared until the next microtask and never after.
  let snapshot: Promise<DbSnapshot | null> | null = null;
  const read = () => {
    if (!snapshot) {
      snapshot = readSnapshot(opts.db).catch(() => null);
      queueMicrotask(() => (snapshot = null));
    }
    return snapshot;
  };

  new Gauge({
    name: "dcc_database_up",
    help: "1 when the last scrape could read the database, else 0 (the dcc_apps / dcc_hosts gauges then keep their last values)",
    registers: [registry],
    async collect() {
      this.set((await read()) ? 1 : 0);
    },
  });
  new Gauge({
    name: "dcc_apps",
    help: "Apps by status (from the database)",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      const s = await read();
      if (!s) return;
      for (const st of APP_STATUSES) this.set({ status: st }, s.apps[st] ?? 0);
    },
  });
  new Gauge({
    name: "dcc_hosts_online",
    help: "Enrolled, not revoked hosts whose agent is connected (from the database)",
    registers: [registry],
    async collect() {
      const s = await read();
      if (s) this.set(s.hostsOnline);
    },
  });
  new Gauge({
    name: "dcc_hosts_total",
    help: "Enrolled, not revoked hosts (from the database)",
    registers: [registry],
    async collect() {
      const s = await read();
      if (s) this.set(s.hostsTotal);
    },
  });
  new Gauge({
    name: "dcc_commands_outbox",
    help: "Unfinished commands in the outbox by state (from the database)",
    labelNames: ["state"] as const,
    registers: [registry],
    async collect() {
      const s = await read();
      if (!s) return;
      this.set({ state: "pending" }, s.outbox.pending ?? 0);
      this.set({ state: "delivered" }, s.outbox.delivered ?? 0);
    },
  });
  new Gauge({
    name: "dcc_app_vulnerabilities",
    help: "Known vulnerabilities of each app's dependencies at its deployed commit, by severity (from the database)",
    labelNames: ["app", "severity"] as const,
    registers: [registry],
    async collect() {
      const rows = await opts.db.$client.execute("SELECT a.name AS app_name, v.severity, count(*) AS n FROM app_vulnerabilities v JOIN apps a ON a.id = v.app_id GROUP BY a.name, v.severity").catch(() => null);
      if (!rows) return;
      this.reset();
      for (const r of rows.rows) this.set({ app: String(r.app_name), severity: String(r.severity) }, Number(r.n));
    },
  });
  new Gauge({
    name: "dcc_build_info",
    help: "Always 1; the console's version as a label",
    labelNames: ["version"] as const,
    registers: [registry],
  }).set({ version: packageVersion(opts.rootDir) }, 1);

  const enqueued = new Counter({
    name: "dcc_commands_enqueued_total",
    help: "Commands written to the outbox by this process",
    labelNames: ["action"] as const,
    registers: [registry],
  });
  const results = new Counter({
    name: "dcc_commands_total",
    help: "Command results recorded by this process",
    labelNames: ["action", "outcome"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "dcc_command_latency_seconds",
    help: "Time from a command's creation to its result",
    labelNames: ["action"] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600],
    registers: [registry],
  });
  const eventLag = new Histogram({
    name: "dcc_event_lag_seconds",
    help: "Time from a change being recorded to its publication to this process's live subscribers",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
    registers: [registry],
  });
  const agents = new Gauge({
    name: "dcc_agent_connections",
    help: "Agent sockets held by this console process",
    registers: [registry],
  });
  const httpTotal = new Counter({
    name: "dcc_http_requests_total",
    help: "HTTP requests answered by this process",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: "dcc_http_request_duration_seconds",
    help: "HTTP request duration (until the response is finished; long-lived live streams included)",
    labelNames: ["method", "route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  const observeEventLag = (seconds: number) => {
    if (Number.isFinite(seconds)) eventLag.observe(Math.max(0, seconds));
  };
  // Everything published to this process's subscribers passes the bus: local changes at once,
  // changes of other processes through the events-table tail.
  opts.bus?.subscribe((c: AppChange) => {
    if (!(c.id > 0) || typeof c.at !== "string") return;
    const at = Date.parse(c.at);
    if (!Number.isNaN(at)) observeEventLag((Date.now() - at) / 1000);
  });

  return {
    registry,
    contentType: registry.contentType,
    commandEnqueued: (a) => enqueued.inc({ action: action(a) }),
    observeCommandResult(a, outcome, seconds) {
      const labels = { action: action(a), outcome: OUTCOMES.has(outcome) ? outcome : "other" };
      results.inc(labels);
      if (Number.isFinite(seconds)) latency.observe({ action: labels.action }, Math.max(0, seconds));
    },
    observeEventLag,
    setAgentConnections: (n) => agents.set(n),
    http(req, res, next) {
      const start = process.hrtime.bigint();
      res.once("finish", () => {
        const method = METHODS.has(req.method) ? req.method : "other";
        const route = routeLabel(req.originalUrl ?? req.url);
        httpTotal.inc({ method, route, status: String(res.statusCode) });
        httpDuration.observe({ method, route }, Number(process.hrtime.bigint() - start) / 1e9);
      });
      next();
    },
    scrape: () => registry.metrics(),
  };
}

interface DbSnapshot {
  apps: Record<string, number>;
  hostsOnline: number;
  hostsTotal: number;
  outbox: Record<string, number>;
}

async function readSnapshot(db: Db): Promise<DbSnapshot> {
  const [apps, hosts, outbox] = await db.$client.batch(
    [
      "SELECT status, count(*) AS n FROM apps GROUP BY status",
      "SELECT count(*) AS total, coalesce(sum(online), 0) AS online FROM hosts WHERE revoked_at IS NULL",
      "SELECT state, count(*) AS n FROM commands WHERE state IN ('pending', 'delivered') GROUP BY state",
    ],
    "read",
  );
  const byKey = (rows: typeof apps.rows, key: string) => Object.fromEntries(rows.map((r) => [String(r[key]), Number(r.n)]));
  return {
    apps: byKey(apps.rows, "status"),
    hostsTotal: Number(hosts.rows[0]?.total ?? 0),
    hostsOnline: Number(hosts.rows[0]?.online ?? 0),
    outbox: byKey(outbox.rows, "state"),
  };
}

function packageVersion(rootDir?: string): string {
  try {
    return String(JSON.parse(readFileSync(join(rootDir ?? ".", "package.json"), "utf8")).version ?? "unknown");
  } catch {
    return "unknown";
  }
}
