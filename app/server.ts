// The console's Node entry: one HTTP server that serves the Remix build and its assets, answers
// /healthz, and hands websocket upgrades on /agent to the hub. Owns start-up (config, database,
// migrations, marketplace seed) and graceful shutdown.
import { createServer, type ServerResponse } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createRequestHandler } from "@remix-run/express";
import type { AppLoadContext, ServerBuild } from "@remix-run/node";
import compression from "compression";
import express from "express";
import { openDb, prepareDb } from "../db/client";
import { seedMarketplace } from "../db/seed";
import { apiMount } from "./api-mount.server";
import { loadConfig } from "./config.server";
import { ChangeBus, noDispatcher, type ConsoleContext } from "./context.server";
import { bodyLimit, crossSiteWriteGuard, securityHeaders } from "./http-security.server";
import { deployWebhookRoute } from "./webhook-route.server";
import { loadSessionKey, prepareFirstRun } from "./services/auth.server";
import { AgentHub, type HubSlot } from "./hub/hub.server";
import { startLocalAgent, type LocalAgent } from "./hub/local-agent.server";
import { hubLog } from "./hub/log.server";
import { startEventTail } from "./services/live.server";
import { startRetention } from "./services/retention.server";
import { createConsoleMetrics } from "./services/metrics.server";
import { NotificationDeliverer } from "./services/notify-delivery.server";
import { startScanner } from "./services/scan.server";


/**
 * Aborts when the client's connection closes. The Request a loader gets cannot be trusted for
 * this: Remix copies it (new Request(…, { signal })) and undici links each copy's signal to its
 * source only through a WeakRef, so after a garbage collection a closed stream is never noticed.
 * The listener here holds its controller for as long as the response lives.
 */
function closedSignal(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.once("close", () => ac.abort());
  return ac.signal;
}

const log = (msg: string, extra: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ t: new Date().toISOString(), level: "info", msg, ...extra }));

async function main() {
  const rootDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const config = loadConfig(process.env, rootDir);
  if (config.workspaceRootWarning) log(config.workspaceRootWarning, { level: "warn" });

  const db = openDb({ url: config.databaseUrl, authToken: config.databaseAuthToken });
  await prepareDb(db, config.databaseUrl, join(rootDir, "db/migrations"));
  const seeded = await seedMarketplace(db, config.templatesDir);

  const bus = new ChangeBus();
  const metrics = createConsoleMetrics({ db, bus, rootDir });
  const session = loadSessionKey(config);
  if (session.note) log(session.note);
  const ctx: ConsoleContext = { db, config, bus, dispatcher: noDispatcher, metrics, sessionKey: session.key };
  const firstRun = await prepareFirstRun(ctx);
  if (!config.passwordLogin && config.adminPassword) log("DCC_ADMIN_PASSWORD is ignored: password sign-in is off (DCC_PASSWORD_LOGIN)", { level: "warn" });
  const stopTail = startEventTail(db, ctx.bus);
  const stopRetention = startRetention(ctx, (msg, fields) => log(msg, { component: "retention", ...fields }));
  const alertLog = (level: string, msg: string, extra: Record<string, unknown> = {}) => log(msg, { level, ...extra });
  const stopScanner = startScanner(ctx, alertLog);
  const deliverer = new NotificationDeliverer(ctx, alertLog).start();
  const agentHub = new AgentHub(ctx);
  ctx.dispatcher = agentHub;
  const hub: HubSlot = agentHub;

  const build = (await import(pathToFileURL(join(rootDir, "build/index.js")).href)) as ServerBuild;
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", config.trustProxy ? 1 : false);
  app.use(metrics.http); // first, so refused requests are counted too
  app.use(securityHeaders);
  // Deploy webhooks read their raw body (signatures) under their own limit, before the general one.
  app.post("/hooks/deploy/:app", deployWebhookRoute(ctx));
  app.use(bodyLimit(), crossSiteWriteGuard(config.publicUrl));
  const loadContext = (req: express.Request, res: express.Response): AppLoadContext => ({
    dcc: ctx,
    clientAddress: req.ip ?? req.socket.remoteAddress,
    cspNonce: res.locals.cspNonce as string,
    closed: closedSignal(res),
  });
  const api = apiMount(build, loadContext);
  // API writes answer small JSON bodies: served before the compression middleware, whose zlib
  // stream per response would cost more than it saves (their reads, which can be long lists, after it).
  app.post("/api/trpc/*", api);
  // gzip for pages, API answers and assets: a dashboard of 1,000 apps is ~1.5 MB of HTML and
  // ~75 KB compressed, its JS 280 KB and 91 KB. Never the live streams (text/event-stream): zlib
  // would hold their events back until its buffer fills.
  // Not compressed: event streams (each message must go out at once).
  app.use(compression({ filter: (req, res) => !/^text\/event-stream/i.test(String(res.getHeader("Content-Type") ?? "")) && compression.filter(req, res) }));
  app.get("/healthz", async (_req, res) => {
    try {
      await db.$client.execute("SELECT 1");
      res.json({ ok: true, database: "ok" });
    } catch (e) {
      res.status(503).json({ ok: false, database: (e as Error).message });
    }
  });
  // Prometheus scrape target; public like /healthz (put it behind the proxy's auth if it must not be).
  app.get("/metrics", async (_req, res) => {
    try {
      const text = await metrics.scrape();
      res.setHeader("Content-Type", metrics.contentType);
      res.end(text);
    } catch (e) {
      res.status(500).type("text/plain").send((e as Error).message);
    }
  });
  app.all("/api/trpc/*", api);
  app.use("/build", express.static(join(rootDir, "public/build"), { immutable: true, maxAge: "1y" }));
  app.use(express.static(join(rootDir, "public"), { maxAge: "1h" }));
  app.all(
    "*",
    createRequestHandler({
      build,
      mode: process.env.NODE_ENV === "development" ? "development" : "production",
      getLoadContext: loadContext,
    }),
  );

  const server = createServer(app);
  server.on("upgrade", (req, socket, head) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === "/agent") return hub.handleUpgrade(req, socket, head);
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    // A deep accept backlog: thousands of agents reconnect at once after a console restart.
    server.listen({ port: config.port, host: config.host, backlog: 4096 }, () => ok());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  log("console listening", { url: `http://localhost:${port}`, database: config.databaseUrl.replace(/\?.*$/, ""), templates: seeded });
  if (firstRun.createdAdmin) log("created the first admin from DCC_ADMIN_PASSWORD", { user: firstRun.createdAdmin });
  // The one secret ever written to the log: single-use, valid only until the first admin exists.
  if (firstRun.setupToken) log("first run: open /setup and enter this set-up token", { setupUrl: `http://localhost:${port}/setup`, setupToken: firstRun.setupToken });

  let localAgent: LocalAgent | null = null;
  try {
    localAgent = await startLocalAgent(ctx, { port, log: hubLog });
  } catch (e) {
    log("could not start the local agent", { level: "error", error: (e as Error).message });
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("shutting down", { signal });
    await localAgent?.stop();
    const force = setTimeout(() => server.closeAllConnections(), 5000);
    force.unref();
    server.closeIdleConnections();
    await Promise.all([new Promise((r) => server.close(r)), hub.close()]);
    stopTail();
    stopRetention();
    stopScanner();
    deliverer.stop();
    db.$client.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((e) => {
  console.error(JSON.stringify({ t: new Date().toISOString(), level: "error", msg: (e as Error).message }));
  process.exit(1);
});
