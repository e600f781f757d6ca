import { createClient } from "@libsql/client";
import { randomUUID, randomBytes } from "node:crypto";
import { chromium } from "playwright-core";
import * as A from "/tmp/dcc-base/scripts/lib/bench-console.mjs";
import * as B from "./lib/bench-console.mjs";
const N = 1000;
async function setup(lib) {
  const c = await lib.startConsole();
  const db = createClient({ url: c.databaseUrl });
  const hostId = randomUUID();
  await db.batch([{ sql: "INSERT INTO hosts (id, name) VALUES (?, ?)", args: [hostId, "h"] }, ...Array.from({ length: N }, (_, i) => ({ sql: "INSERT INTO apps (id, name, repository, start_command, port, host_id, status, health, commit_sha) VALUES (?, ?, 'https://github.com/x/y.git', 'python main.py', ?, ?, 'RUNNING', 'reachable', ?)", args: [randomUUID(), `app-${String(i).padStart(4,"0")}`, 10000 + i, hostId, randomBytes(20).toString("hex")] }))], "write");
  const ck = await lib.httpSignIn(c.url, "admin", c.password);
  for (let i = 0; i < 5; i++) await (await fetch(c.url + "/", { headers: { cookie: `${ck.name}=${ck.value}` } })).text();
  return { c, ck };
}
const envs = { base: await setup(A), new: await setup(B) };
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu"] });
const res = { base: [], new: [] };
for (let k = 0; k < 12; k++) {
  for (const which of k % 2 ? ["base", "new"] : ["new", "base"]) {
    const { c, ck } = envs[which];
    const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await ctx.addCookies([{ name: ck.name, value: ck.value, url: c.url }]);
    const page = await ctx.newPage();
    await browser.startTracing(page, { categories: ["devtools.timeline", "toplevel"] });
    await page.goto(c.url + "/", { waitUntil: "commit" });
    await page.waitForSelector('[data-live="on"]', { timeout: 30000, polling: 10 });
    const tti = await page.evaluate(() => performance.now());
    const trace = JSON.parse((await browser.stopTracing()).toString());
    const ev = trace.traceEvents ?? trace;
    // main thread of the renderer: the thread with CrRendererMain name
    const parse = ev.find((e) => e.name === "ParseHTML");
    const mainTid = parse?.tid, pid = parse?.pid;
    const cpu = ev.filter((e) => e.tid === mainTid && e.pid === pid && e.ph === "X" && e.name === "ThreadControllerImpl::RunTask" && e.tdur).reduce((s, e) => s + e.tdur / 1000, 0);
    if (k > 0) res[which].push({ tti, cpu });
    await ctx.close();
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
for (const w of ["base", "new"]) console.log(w, "tti median", med(res[w].map((r) => r.tti)).toFixed(0), "min", Math.min(...res[w].map((r) => r.tti)).toFixed(0), "main-thread CPU median", med(res[w].map((r) => r.cpu)).toFixed(0));
await browser.close(); await envs.base.c.stop(); await envs.new.c.stop();
