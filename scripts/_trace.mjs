import { createClient } from "@libsql/client";
import { randomUUID, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { ADMIN_USER, httpSignIn, startConsole } from "./lib/bench-console.mjs";
const c = await startConsole();
const db = createClient({ url: c.databaseUrl });
const hostId = randomUUID();
await db.batch([{ sql: "INSERT INTO hosts (id, name) VALUES (?, ?)", args: [hostId, "h"] }, ...Array.from({ length: 1000 }, (_, i) => ({ sql: "INSERT INTO apps (id, name, repository, start_command, port, host_id, status, health, commit_sha) VALUES (?, ?, 'https://github.com/x/y.git', 'python main.py', ?, ?, 'RUNNING', 'reachable', ?)", args: [randomUUID(), `app-${String(i).padStart(4,"0")}`, 10000 + i, hostId, randomBytes(20).toString("hex")] }))], "write");
const ck = await httpSignIn(c.url, ADMIN_USER, c.password);
for (let i = 0; i < 5; i++) await (await fetch(c.url + "/", { headers: { cookie: `${ck.name}=${ck.value}` } })).text();
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu"] });
for (let k = 0; k < 3; k++) {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await ctx.addCookies([{ name: ck.name, value: ck.value, url: c.url }]);
  const page = await ctx.newPage();
  if (k === 2) await browser.startTracing(page, { categories: ["devtools.timeline", "blink.user_timing", "v8.execute"] });
  await page.goto(c.url + "/", { waitUntil: "commit" });
  await page.waitForSelector('[data-live="on"]', { timeout: 30000 });
  if (k === 2) {
    const buf = await browser.stopTracing();
    const trace = JSON.parse(buf.toString());
    const events = trace.traceEvents ?? trace;
    const main = events.filter((e) => e.ph === "X" && e.dur);
    const tot = {};
    for (const e of main) { if (e.cat.includes("devtools.timeline")) tot[e.name] = (tot[e.name] ?? 0) + e.dur / 1000; }
    const t0 = Math.min(...main.map((e) => e.ts));
    for (const e of main) if (["Layout", "UpdateLayoutTree", "ParseHTML", "FunctionCall"].includes(e.name) && e.dur > 8000) console.log(e.name, ((e.ts - t0) / 1000).toFixed(0), (e.dur / 1000).toFixed(1));
    console.log(Object.entries(tot).sort((a, b) => b[1] - a[1]).slice(0, 25).map(([n, d]) => `${n}: ${d.toFixed(1)}`).join("\n"));
  }
  await ctx.close();
}
await browser.close(); await c.stop();
