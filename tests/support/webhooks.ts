// Deploy-webhook deliveries for tests, built from the recorded forge shapes in
// tests/fixtures/webhooks and signed the way each forge signs them.
import { createHmac, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./console";

export type Forge = "github" | "gitlab" | "gitea";
export const FORGES: Forge[] = ["github", "gitlab", "gitea"];

interface Fixture {
  headers: Record<string, string>;
  body: Record<string, unknown>;
}
const fixture = (forge: Forge): Fixture => JSON.parse(readFileSync(join(ROOT, `tests/fixtures/webhooks/${forge}-push.json`), "utf8"));

const DELIVERY_HEADER: Record<Forge, string[]> = {
  github: ["x-github-delivery"],
  gitlab: ["x-gitlab-event-uuid"],
  gitea: ["x-gitea-delivery", "x-gogs-delivery", "x-github-delivery"],
};

export interface DeliveryOptions {
  secret: string;
  branch?: string;
  ref?: string;
  deliveryId?: string;
  /** Sign with this secret instead (a forged or stale signature). */
  signWith?: string;
  /** Send no signature / token header at all. */
  unsigned?: boolean;
  /** Replace the body (bytes as given). */
  rawBody?: Buffer;
}

export function delivery(forge: Forge, o: DeliveryOptions): { headers: Record<string, string>; body: Buffer; deliveryId: string } {
  const f = fixture(forge);
  const deliveryId = o.deliveryId ?? randomUUID();
  const headers = { ...f.headers };
  for (const h of DELIVERY_HEADER[forge]) headers[h] = deliveryId;
  const payload = { ...f.body, ref: o.ref ?? `refs/heads/${o.branch ?? "main"}` };
  const body = o.rawBody ?? Buffer.from(JSON.stringify(payload));
  const key = o.signWith ?? o.secret;
  if (!o.unsigned) {
    const hex = createHmac("sha256", key).update(body).digest("hex");
    if (forge === "github") headers["x-hub-signature-256"] = `sha256=${hex}`;
    if (forge === "gitea") {
      headers["x-gitea-signature"] = hex;
      headers["x-hub-signature-256"] = `sha256=${hex}`;
    }
    if (forge === "gitlab") headers["x-gitlab-token"] = key;
  }
  return { headers, body, deliveryId };
}

export async function deliver(url: string, app: string, d: { headers: Record<string, string>; body: Buffer }) {
  const r = await fetch(`${url}/hooks/deploy/${app}`, { method: "POST", headers: d.headers, body: new Uint8Array(d.body) });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON (an error page)
  }
  return { status: r.status, body: json, text };
}
