import { createClient } from "@libsql/client";
import { randomUUID, randomBytes } from "node:crypto";
import { chromium } from "playwright-core";
import { ADMIN_USER, httpSignIn, startConsole } from "./lib/bench-console.mjs";
const N = Number(process.argv[2] ?? 12);
const c = await startConsole();
const db = createClient({ url: c.databaseUrl });
const hostId = randomUUID();
const st = [["RUNNING","reachable",null],["STOPPED","unreachable","killed by SIGKILL (exit code 137)"],["STARTING","unknown",null],["RUNNING","unreachable",null]];
await db.batch([{ sql: "INSERT INTO hosts (id, name, online, address) VALUES (?, ?, 1, '10.0.0.7')", args: [hostId, "gpu-box-1"] }, ...Array.from({ length: N }, (_, i) => ({ sql: "INSERT INTO apps (id, name, repository, start_command, port, host_id, status, health, last_error, phase, commit_sha, template_id) VALUES (?, ?, 'https://github.com/x/y.git', 'python main.py', ?, ?, ?, ?, ?, ?, ?, ?)", args: [randomUUID(), `app-${String(i).padStart(4,"0")}${i%5===0?"-with-a-longer-name":""}`, 10000 + i, hostId, st[i%4][0], st[i%4][1], st[i%4][2], st[i%4][0]==="STARTING"?"clone":null, randomBytes(20).toString("hex"), i%3===0?"comfyui":null] }))], "write");
const ck = await httpSignIn(c.url, ADMIN_USER, c.password);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu"] });
for (const [w, h, name] of [[1280, 900, "desk"], [390, 844, "phone"], [900, 800, "mid"]]) {
  const ctx = await browser.newContext({ viewport: { width: w, height: h } });
  await ctx.addCookies([{ name: ck.name, value: ck.value, url: c.url }]);
  const page = await ctx.newPage();
  await page.goto(c.url + "/");
  await page.waitForSelector('[data-live="on"]');
  if (name === "desk") { await page.locator('tr[data-app="app-0001"] [data-light]').hover(); }
  await page.screenshot({ path: `/tmp/shot-${name}.png` });
  if (name === "desk") {
    const cdp = await ctx.newCDPSession(page);
    const { nodes } = await cdp.send("Accessibility.getFullAXTree");
    const roles = {};
    for (const n of nodes) roles[n.role?.value] = (roles[n.role?.value] ?? 0) + 1;
    console.log(JSON.stringify(roles));
  }
  await ctx.close();
}
await browser.close(); await c.stop();
