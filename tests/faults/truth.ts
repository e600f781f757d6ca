// The truth checker of the fault matrix. Reality is what Docker says about the app's container
// (found by its labels dcc.app + dcc.host) plus an HTTP probe of the app's port for the app's own
// marker; the console's view is apps.get (and, when a dashboard is attached, the light in a real
// browser). `settle` waits for reality to reach a state, then polls until the console agrees and
// records the lag; `ledger` proves that no command was lost or ran twice; `recover` is the one
// action a user would take.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { expect } from "vitest";
import { docker, inspect, type ContainerInspect } from "../support/docker";
import { launchBrowser, signIn } from "../support/browser";
import type { RunningConsole } from "../support/console";
import { freePort } from "../support/net";
import type { AppDto } from "../../app/services/apps.server";
import type { FaultStack } from "./harness";

export type Light = "green" | "amber" | "red" | "grey";

/** The app object of the API, with the presence flag the status rules add. */
export type AppView = AppDto & { hostOnline?: boolean };

export interface Reality {
  containers: number;
  running: boolean;
  exitCode: number | null;
  oomKilled: boolean;
  /** Restarts by Docker's restart policy (crash loop when not serving). */
  restarts: number;
  /** The port answers HTTP 200 with the app's own marker (not some other process's bytes). */
  serving: boolean;
}

export interface FaultApp {
  name: string;
  port: number;
  marker: string;
}

// ------------------------------------------------------------------------------------------------
// Reality

export async function containersOf(s: FaultStack, name: string): Promise<string[]> {
  const out = await docker(["ps", "-a", "-q", "--no-trunc", "--filter", `label=dcc.app=${name}`, "--filter", `label=dcc.host=${s.hostId}`]);
  return out.split("\n").map((l) => l.trim()).filter(Boolean);
}

export async function probe(app: FaultApp): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${app.port}/index.html`, { signal: AbortSignal.timeout(1500) });
    return r.ok && (await r.text()).includes(app.marker);
  } catch {
    return false;
  }
}

export async function reality(s: FaultStack, app: FaultApp): Promise<Reality> {
  const ids = await containersOf(s, app.name);
  let running = false;
  let exitCode: number | null = null;
  let oomKilled = false;
  let restarts = 0;
  for (const id of ids) {
    const info = await inspect(id).catch(() => null);
    if (!info) continue;
    const st = info.State as ContainerInspect["State"] & { Restarting?: boolean; OOMKilled?: boolean };
    restarts += Number((info as { RestartCount?: number }).RestartCount ?? 0);
    // Between two tries of Docker's restart policy a container is not running, whatever Running says.
    running ||= st.Running && !st.Restarting;
    oomKilled ||= st.OOMKilled === true;
    if (!st.Running || st.Restarting) exitCode = st.ExitCode;
  }
  const serving = running && (await probe(app));
  // Running again after a crash but not answering: Docker's restart policy in a crash loop is down.
  if (running && !serving && restarts > 0) running = false;
  return { containers: ids.length, running, exitCode, oomKilled, restarts, serving };
}

export function realLight(r: Reality, hostOnline = true): Light {
  if (!hostOnline) return "grey";
  if (r.running && r.serving) return "green";
  if (!r.running) return "red";
  return "amber";
}

// ------------------------------------------------------------------------------------------------
// The console's view

export async function view(c: RunningConsole, name: string): Promise<AppView | null> {
  const r = await c.query<AppView>("apps.get", { name });
  return r.status === 200 ? r.body.result!.data : null;
}

export function viewLight(a: Pick<AppView, "status" | "health" | "hostOnline">): Light {
  if (a.hostOnline === false) return "grey";
  if (a.status === "STOPPED") return "red";
  if (a.status === "RUNNING" && a.health === "reachable") return "green";
  return "amber";
}

export async function hostOnline(c: RunningConsole, hostId: string): Promise<boolean> {
  const r = await c.query<{ online: boolean }>("hosts.get", { id: hostId });
  return r.body.result?.data.online === true;
}

// ------------------------------------------------------------------------------------------------
// A dashboard in a real browser

export class Dashboard {
  private browser: Browser | null = null;
  private page: Page | null = null;
  private url = "";

  /** Opens (or re-opens after a console restart) the dashboard of `c`, signed in. */
  async open(c: RunningConsole): Promise<void> {
    this.browser ??= await launchBrowser();
    if (!this.page) {
      this.page = await this.browser.newPage();
      await signIn(this.page, c);
    } else {
      await this.page.goto(`${c.url}/`);
    }
    this.url = c.url;
    await this.page.waitForSelector("table", { timeout: 30_000 }).catch(() => {});
  }

  get isOpen(): boolean {
    return this.page !== null;
  }

  /** The light of the app's row as the page shows it now (`null`: no row). */
  async light(name: string): Promise<string | null> {
    if (!this.page) return null;
    const el = this.page.locator(`tr[data-app="${name}"] [data-light]`).first();
    if ((await el.count()) === 0) return null;
    return el.getAttribute("data-light", { timeout: 2000 });
  }

  /** The row's visible text (the reason beside a red or amber light). */
  async rowText(name: string): Promise<string> {
    if (!this.page) return "";
    return (await this.page.locator(`tr[data-app="${name}"]`).first().innerText({ timeout: 5000 }).catch(() => "")) ?? "";
  }

  async reload(): Promise<void> {
    if (this.page && this.url) await this.page.goto(`${this.url}/`);
  }

  async close(): Promise<void> {
    await this.browser?.close().catch(() => {});
    this.browser = null;
    this.page = null;
  }
}

const sameLight = (shown: string | null, want: Light) => shown === want || (want === "grey" && shown === "gray");

// ------------------------------------------------------------------------------------------------
// Lags, recorded per scenario and printed by the file

export interface LagRecord {
  scenario: string;
  want: Light;
  lagMs: number;
  windowMs: number;
  browserLagMs?: number;
}
export const lags: LagRecord[] = [];

export function printLags(title: string): void {
  if (!lags.length) return;
  const lines = lags.map(
    (l) =>
      `  ${l.scenario.padEnd(44)} ${l.want.padEnd(5)} api ${String(l.lagMs).padStart(6)} ms` +
      (l.browserLagMs !== undefined ? `  dashboard ${String(l.browserLagMs).padStart(6)} ms` : "") +
      (l.lagMs > l.windowMs ? `  (outside the ${l.windowMs / 1000} s window)` : ""),
  );
  console.log(`${title}: console view vs reality, lag after reality settled\n${lines.join("\n")}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll<T>(what: string, fn: () => Promise<T | false | null | undefined>, capMs: number, everyMs = 100, detail?: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + capMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const more = detail ? await detail().catch((e) => String(e)) : "";
      throw new Error(`timed out after ${capMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}${more ? `\n${more}` : ""}`);
    }
    await sleep(everyMs);
  }
}

export interface SettleOptions {
  scenario: string;
  /** lastError (or phase) must match once the console agrees (red and amber states). */
  reason?: RegExp;
  dashboard?: Dashboard;
  /** How long reality may take to reach the state (a deploy, a daemon restart). */
  realityCapMs?: number;
  /** Expected host presence (false: the light is grey whatever the container does). */
  hostOnline?: boolean;
}

/**
 * Waits until reality shows `want`, then until the console's view (and the dashboard light) agree;
 * records the lag. The correctness window is 2 s (15 s for host presence); the cap is generous so a
 * loaded machine does not fail a test on speed, and the lag is printed for the record.
 */
export async function settle(s: FaultStack, app: FaultApp, want: Light, o: SettleOptions): Promise<{ view: AppView; reality: Reality; lagMs: number }> {
  const online = o.hostOnline ?? want !== "grey";
  const realWant = want === "grey" ? null : want;
  const real = realWant
    ? await poll(`reality of ${app.name} to be ${realWant}`, async () => {
        const r = await reality(s, app);
        return realLight(r) === realWant && r;
      }, o.realityCapMs ?? 60_000, 100, async () => `reality: ${JSON.stringify(await reality(s, app))}`)
    : await reality(s, app);
  const t0 = Date.now();
  const windowMs = want === "grey" || o.hostOnline === false ? 15_000 : 2_000;
  const cap = want === "grey" ? 45_000 : 20_000;
  const agreed = await poll(
    `the console to show ${app.name} ${want}${o.reason ? ` with a reason matching ${o.reason}` : ""}`,
    async () => {
      const v = await view(s.c, app.name);
      if (!v || viewLight(v) !== want) return false;
      if (want === "grey" && v.health !== "unknown") return false;
      if (o.reason && !o.reason.test(`${v.lastError ?? ""} ${v.phase ?? ""}`)) return false;
      return v;
    },
    cap,
    100,
    async () => `console: ${JSON.stringify(await view(s.c, app.name))}\nreality: ${JSON.stringify(await reality(s, app))}`,
  );
  const lagMs = Date.now() - t0;
  const rec: LagRecord = { scenario: o.scenario, want, lagMs, windowMs };
  if (o.dashboard?.isOpen) {
    const d = o.dashboard;
    await poll(`the dashboard light of ${app.name} to be ${want}`, async () => sameLight(await d.light(app.name), want), cap, 100, async () => `row: ${await d.rowText(app.name)} light=${await d.light(app.name)}`);
    rec.browserLagMs = Date.now() - t0;
    // The row says why beside a red or grey light, not only the app page.
    const why = want === "grey" ? /offline|revoked/i : want === "red" ? o.reason : undefined;
    if (why) await poll(`the dashboard row of ${app.name} to say why (${why})`, async () => why.test(await d.rowText(app.name)), cap, 100, async () => `row: ${await d.rowText(app.name)}`);
  }
  lags.push(rec);
  // Still true now: reality did not move away while the console caught up (a flapping light is a lie too).
  const again = await reality(s, app);
  if (realWant) expect(realLight(again), `reality of ${app.name} moved while the console caught up`).toBe(realWant);
  return { view: agreed, reality: real, lagMs };
}

// ------------------------------------------------------------------------------------------------
// Commands: none lost, none run twice

export interface CommandRow {
  id: string;
  action: string;
  state: string;
  attempts: number;
  error: string | null;
}

export async function commandsOf(c: RunningConsole, name: string): Promise<CommandRow[]> {
  const r = await c.db().execute({ sql: "SELECT id, action, state, attempts, error FROM commands WHERE app_name = ? ORDER BY rowid", args: [name] });
  return r.rows.map((x) => ({ id: String(x.id), action: String(x.action), state: String(x.state), attempts: Number(x.attempts), error: x.error === null ? null : String(x.error) }));
}

/** How many times the agents of this stack (every incarnation) finished running command `id`. */
export function runsOf(s: FaultStack, id: string): number {
  return s.agents.reduce((n, a) => n + a.find("command executed").filter((e) => e.id === id).length, 0);
}

/**
 * Waits until every command of the app has ended (none lost: none left pending or delivered), then
 * checks that none ran twice and that Docker holds at most one container for the app.
 */
/** The agent's command journal (state dir, JSON lines): the last entry per command id. */
export async function journal(s: FaultStack): Promise<Map<string, { state: string; ok?: boolean }>> {
  const text = await readFile(join(s.stateDir, "journal.jsonl"), "utf8").catch(() => "");
  const out = new Map<string, { state: string; ok?: boolean }>();
  for (const line of text.split("\n")) {
    try {
      const e = JSON.parse(line) as { id?: string; state: string; ok?: boolean };
      if (e.id) out.set(e.id, e);
    } catch {
      // a torn last line
    }
  }
  return out;
}

export async function ledger(s: FaultStack, app: FaultApp, capMs = 60_000, o: { journal?: boolean } = {}): Promise<CommandRow[]> {
  const rows = await poll(
    `every command of ${app.name} to end`,
    async () => {
      const rows = await commandsOf(s.c, app.name);
      return rows.every((r) => r.state !== "pending" && r.state !== "delivered") && rows;
    },
    capMs,
    200,
    async () => JSON.stringify(await commandsOf(s.c, app.name)),
  );
  for (const r of rows) expect(runsOf(s, r.id), `command ${r.action} ${r.id} ran more than once`).toBeLessThanOrEqual(1);
  if (o.journal !== false) {
    // What the console counts as done, the agent ran and journaled as done (a replay is answered from there).
    const j = await journal(s);
    for (const r of rows.filter((x) => x.state === "done" && runsOf(s, x.id) === 1)) {
      expect(j.get(r.id), `journal entry of ${r.action} ${r.id}`).toMatchObject({ state: "done", ok: true });
    }
  }
  expect((await containersOf(s, app.name)).length, `containers of ${app.name}`).toBeLessThanOrEqual(1);
  return rows;
}

// ------------------------------------------------------------------------------------------------
// Apps

let serial = 0;
/** A unique app name for this run (DNS label). */
export function appName(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}${(serial++).toString(36)}`.slice(0, 63);
}

export const SERVE = "httpd -f -p $PORT -h /app";

export interface CreateOptions {
  name?: string;
  prefix?: string;
  startCommand?: string;
  installCommand?: string;
  image?: string;
  port?: number;
  /** Extra files in the repository. */
  files?: Record<string, string>;
  /** Do not create the repository (e.g. to make it unreachable another way). */
  repo?: boolean;
}

export interface Created extends FaultApp {
  reply: { status: number; body: { result?: { data: AppView }; error?: { message: string } } };
}

/** Creates the app's repository (index.html holding its marker) and the app on the stack's host. */
export async function createApp(s: FaultStack, o: CreateOptions = {}): Promise<Created> {
  const name = o.name ?? appName(o.prefix ?? "f");
  const marker = `fault-app:${name}:${Math.random().toString(36).slice(2)}`;
  if (o.repo !== false) await s.git.createRepo(name, { "index.html": `<h1>${marker}</h1>\n`, ...o.files });
  const port = o.port ?? (await freePort());
  const reply = await s.c.mutate<AppView>("apps.create", {
    name,
    repository: s.repoUrl(name),
    startCommand: o.startCommand ?? SERVE,
    port,
    hostId: s.hostId,
    ...(o.installCommand ? { installCommand: o.installCommand } : {}),
    ...(o.image ? { image: o.image } : {}),
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return { name, port, marker, reply };
}

/** Creates an app and waits until it is RUNNING, serving, and the console agrees. */
export async function deployApp(s: FaultStack, o: CreateOptions & { scenario: string; dashboard?: Dashboard }): Promise<FaultApp> {
  const app = await createApp(s, o);
  await settle(s, app, "green", { scenario: `${o.scenario}: first deploy`, dashboard: o.dashboard, realityCapMs: 90_000 });
  return app;
}

export interface ActionReply {
  app: AppView | null;
  commandId: string | null;
  queued: boolean;
}

/** One call to an apps.* mutation (as the UI's button makes it); fails unless the console accepted it. */
export async function act(s: FaultStack, verb: string, input: Record<string, unknown>): Promise<ActionReply & AppView> {
  const r = await s.c.mutate<ActionReply & AppView>(`apps.${verb}`, input);
  expect(r.status, `apps.${verb} ${JSON.stringify(input)} answered ${r.status}: ${JSON.stringify(r.body.error ?? r.body)}`).toBe(200);
  return r.body.result!.data;
}

/** The one action that must bring the app back: RUNNING, serving, the console agreeing. */
export async function recover(
  s: FaultStack,
  app: FaultApp,
  verb: string,
  o: { scenario: string; dashboard?: Dashboard; input?: Record<string, unknown> },
): Promise<AppView> {
  await act(s, verb, { name: app.name, ...o.input });
  const { view: v } = await settle(s, app, "green", { scenario: `${o.scenario}: after apps.${verb}`, dashboard: o.dashboard, realityCapMs: 90_000 });
  expect(await probe(app)).toBe(true);
  return v;
}

/** Writes a file into the app's workspace on the host (bind-mounted at /app in the container). */
export async function touchInWorkspace(s: FaultStack, app: FaultApp, file: string, content = ""): Promise<void> {
  await writeFile(`${s.workspaceRoot}/${app.name}/${file}`, content);
}

export { poll, sleep };
