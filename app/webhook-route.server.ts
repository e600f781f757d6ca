// POST /hooks/deploy/<app>: the deploy webhook as an express route, ahead of the general body
// limit and CSRF guard, because the signature is over the raw bytes and a refused oversized body
// must still be recorded. Reads at most WEBHOOK_BODY_LIMIT bytes; the use case is
// app/services/webhooks.server.ts.
import type { Request, Response } from "express";
import type { ConsoleContext } from "./context.server";
import { receiveDelivery, WEBHOOK_BODY_LIMIT } from "./services/webhooks.server";

/** The body, or null as soon as it grows past `limit` (the rest is drained after the answer, which closes the connection). */
function readLimited(req: Request, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) return void chunks.push(c);
      req.off("data", onData);
      req.pause();
      resolve(null);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function deployWebhookRoute(ctx: ConsoleContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v[0] : v;
    const base = { appName: String(req.params.app ?? ""), headers, address: req.ip ?? req.socket.remoteAddress };
    try {
      const length = req.headers["content-length"];
      let body: Buffer | null = null;
      if (length === undefined || (/^\d{1,12}$/.test(length) && Number(length) <= WEBHOOK_BODY_LIMIT)) body = await readLimited(req, WEBHOOK_BODY_LIMIT);
      const answer = await receiveDelivery(ctx, body ? { ...base, body } : { ...base, body: Buffer.alloc(0), oversized: true });
      if (!body) res.set("connection", "close");
      res.status(answer.status).json(answer.body);
      // Drain what the client still sends, as the general body limit does, so it reads the 413.
      if (!body) req.resume();
    } catch (e) {
      console.error(JSON.stringify({ t: new Date().toISOString(), level: "error", msg: "webhook delivery failed", error: (e as Error).message }));
      if (!res.headersSent) res.status(500).json({ ok: false, reason: "internal error" });
    }
  };
}
