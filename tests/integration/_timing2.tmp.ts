import { performance } from "node:perf_hooks";
import { opsFixture } from "./ops-fixture";
import { freePort } from "../support/net";
const fx = await opsFixture();
try {
  const repo = await fx.git.createRepo("tiny", { "index.html": "<h1>bench page</h1>\n" });
  for (let i = 0; i < 4; i++) {
    const port = await freePort();
    const name = `tiny-${i}`;
    const spec = fx.spec(name, repo.url, port);
    const t0 = performance.now();
    const from = fx.reports.length;
    const out = await fx.run(name, "provision", { spec }, { onProgress: (p) => console.log(`${(performance.now() - t0).toFixed(0).padStart(6)} ${p.step} ${p.message ?? ""} ${p.pct ?? ""}`) });
    console.log(`${(performance.now() - t0).toFixed(0).padStart(6)} done ok=${out.ok} ${out.error ?? ""}`);
    await fx.waitForStatus(name, (r) => r.status === "RUNNING" && r.health === "reachable", { from });
    console.log(`${(performance.now() - t0).toFixed(0).padStart(6)} reachable`);
    await fx.apply(name, "deinstall", {});
  }
} finally {
  await fx.close();
}
