// Delivers queued notifications. Any console process may run this loop: a due row is claimed by
// moving its next attempt past a lease (so a process killed mid-send leaves it to be retried),
// sent, then marked delivered or rescheduled with exponential backoff until it is given up. Targets
// are rate-limited per process; a host-offline event waits out its grace period and is dropped
// when the host came back. JSON targets get an HMAC-SHA256 signature over `<timestamp>.<body>`.
import { createHmac } from "node:crypto";
import { lookup as dnsLookup } from "node:dns";
import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { and, eq, lte } from "drizzle-orm";
import { repositoryProblem } from "../../agent/src/contract/validation";
import { hosts, notificationDeliveries, notificationTargets, type NotificationDelivery, type NotificationTarget } from "../../db/schema";
import type { ConsoleContext } from "../context.server";
import type { NotificationPayload } from "./notify.server";
import { secretKey, unseal } from "./secret-box.server";

type Ctx = Pick<ConsoleContext, "db" | "config">;

export const MAX_ATTEMPTS = 10;
const LEASE_MS = 60_000;
const TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 3_600_000;
/** At most this many sends per target per minute from one process; the rest wait their turn. */
export const RATE_PER_MINUTE = 30;

/** `sha256=<hex>` of HMAC-SHA256(secret, `<timestamp>.<body>`): what X-DCC-Signature carries. */
export function signatureOf(secret: string, timestamp: string, body: string): string {
  return "sha256=" + createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

/** The Slack-compatible message (an incoming webhook takes `text`). */
export function slackBody(p: NotificationPayload): string {
  const icon = { "app.stopped": ":red_circle:", "deploy.failed": ":x:", "host.offline": ":warning:", vulnerability: ":rotating_light:", test: ":bell:" }[p.event] ?? "";
  return JSON.stringify({ text: `${icon} ${p.text}`.trim() });
}

/** The receiver's address must pass the repository rules too: a DNS name never leads to link-local or metadata addresses. */
function guardedLookup(allowInsecure: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: false }, (err, address, family) => {
      if (err) return callback(err, address, family);
      const literal = family === 6 ? `[${address}]` : address;
      const problem = repositoryProblem(`https://${literal}/x`, { allowInsecure });
      if (problem) return callback(Object.assign(new Error(`receiver address ${address} refused: ${problem.replace(/^must not point at /, "")}`), { code: "EREFUSED" }), address, family);
      callback(null, address, family);
    });
  };
}

function post(url: string, body: string, headers: Record<string, string>, allowInsecure: boolean): Promise<number> {
  const u = new URL(url);
  const opts: RequestOptions = {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), "user-agent": "dcc-notify/1", ...headers },
    lookup: guardedLookup(allowInsecure),
    timeout: TIMEOUT_MS,
  };
  return new Promise((resolve, reject) => {
    const req = (u.protocol === "https:" ? httpsRequest : httpRequest)(u, opts, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** Sends one delivery to its target; resolves to the HTTP status (2xx = delivered) or throws. */
export async function send(ctx: Ctx, target: NotificationTarget, d: NotificationDelivery): Promise<number> {
  const key = secretKey(ctx.config);
  const url = unseal(key, `notify-url:${target.id}`, target.urlSealed);
  const payload = d.payload as unknown as NotificationPayload;
  if (target.kind === "slack") return post(url, slackBody(payload), {}, ctx.config.allowInsecureGit);
  const body = JSON.stringify(payload);
  const ts = String(Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = { "x-dcc-event": payload.event, "x-dcc-delivery": d.id, "x-dcc-timestamp": ts };
  if (target.secretSealed) headers["x-dcc-signature"] = signatureOf(unseal(key, `notify-secret:${target.id}`, target.secretSealed), ts, body);
  return post(url, body, headers, ctx.config.allowInsecureGit);
}

export function backoffMs(baseMs: number, attempts: number): number {
  return Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, attempts - 1));
}

export class NotificationDeliverer {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** Send times per target in the last minute (this process). */
  private readonly sent = new Map<string, number[]>();

  constructor(
    private readonly ctx: Ctx,
    private readonly log: (level: string, msg: string, extra?: Record<string, unknown>) => void,
    private readonly tickMs = 500,
  ) {}

  start(): this {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = true;
      this.tick()
        .catch((e) => this.log("error", "notification delivery failed", { error: (e as Error).message }))
        .finally(() => (this.running = false));
    }, this.tickMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private allowed(targetId: string, now: number): number | null {
    const times = (this.sent.get(targetId) ?? []).filter((t) => now - t < 60_000);
    this.sent.set(targetId, times);
    return times.length < RATE_PER_MINUTE ? null : times[0]! + 60_000;
  }

  async tick(): Promise<void> {
    const { db } = this.ctx;
    const now = Date.now();
    const nowIso = new Date(now).toISOString();
    const due = await db
      .select()
      .from(notificationDeliveries)
      .where(and(eq(notificationDeliveries.state, "pending"), lte(notificationDeliveries.nextAttemptAt, nowIso)))
      .orderBy(notificationDeliveries.nextAttemptAt)
      .limit(20);
    for (const d of due) {
      const reschedule = (at: number) =>
        db.update(notificationDeliveries).set({ nextAttemptAt: new Date(at).toISOString() }).where(and(eq(notificationDeliveries.id, d.id), eq(notificationDeliveries.state, "pending")));
      const finish = (state: "skipped" | "failed", why: string) =>
        db.update(notificationDeliveries).set({ state, lastError: why }).where(eq(notificationDeliveries.id, d.id));
      if (d.event === "host.offline") {
        const graceEnd = Date.parse(d.createdAt) + this.ctx.config.alerts.hostOfflineMs;
        if (graceEnd > now) {
          await reschedule(graceEnd);
          continue;
        }
        const host = (d.payload as { host?: string }).host;
        const [h] = host ? await db.select({ online: hosts.online }).from(hosts).where(eq(hosts.id, host)) : [];
        if (!h || h.online) {
          await finish("skipped", h ? "the host came back within the grace period" : "the host is gone");
          continue;
        }
      }
      const [target] = await db.select().from(notificationTargets).where(eq(notificationTargets.id, d.targetId));
      if (!target) {
        await finish("skipped", "target deleted");
        continue;
      }
      const wait = this.allowed(target.id, now);
      if (wait !== null) {
        await reschedule(wait);
        continue;
      }
      // The claim: only one process moves this row past the lease; the others see nothing due.
      const attempts = d.attempts + 1;
      const claimed = await db
        .update(notificationDeliveries)
        .set({ nextAttemptAt: new Date(now + LEASE_MS).toISOString(), attempts })
        .where(and(eq(notificationDeliveries.id, d.id), eq(notificationDeliveries.state, "pending"), eq(notificationDeliveries.nextAttemptAt, d.nextAttemptAt)))
        .returning({ id: notificationDeliveries.id });
      if (!claimed.length) continue;
      this.sent.get(target.id)!.push(now);
      await this.attempt(target, { ...d, attempts });
    }
  }

  private async attempt(target: NotificationTarget, d: NotificationDelivery): Promise<void> {
    const { db } = this.ctx;
    let status = 0;
    let error: string | null = null;
    try {
      status = await send(this.ctx, target, d);
      if (status < 200 || status >= 300) error = `the receiver answered HTTP ${status}`;
    } catch (e) {
      error = (e as Error).message.slice(0, 500);
    }
    const at = new Date().toISOString();
    const givenUp = error !== null && d.attempts >= MAX_ATTEMPTS;
    if (error === null) {
      await db.update(notificationDeliveries).set({ state: "delivered", deliveredAt: at, lastError: null }).where(eq(notificationDeliveries.id, d.id));
    } else {
      const next = new Date(Date.now() + backoffMs(this.ctx.config.alerts.notifyRetryMs, d.attempts)).toISOString();
      await db
        .update(notificationDeliveries)
        .set(givenUp ? { state: "failed", lastError: error } : { nextAttemptAt: next, lastError: error })
        .where(eq(notificationDeliveries.id, d.id));
    }
    await db
      .update(notificationTargets)
      .set({ lastAttemptAt: at, lastOutcome: error === null ? "delivered" : givenUp ? "failed" : "retrying", lastHttpStatus: status || null, lastError: error })
      .where(eq(notificationTargets.id, target.id));
    this.log(error === null ? "info" : "warn", error === null ? "notification delivered" : "notification not delivered", {
      target: target.id,
      delivery: d.id,
      event: d.event,
      attempt: d.attempts,
      ...(error ? { error, willRetry: !givenUp } : {}),
    });
  }
}
