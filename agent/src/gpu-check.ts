// gpu-check: the agent's own GPU ledger and preflight code run against this machine's real
// nvidia-smi and /proc, with no Docker engine needed (scripts/gpu-check.sh bundles it into
// agent/dist/gpu-check.mjs, one file that needs only Node). Prints each GPU's memory with the
// processes holding it (pid → MiB, the container its cgroup names, or none) and the preflight
// (driver, the CUDA it supports, container toolkit, an image's CUDA checked against it).
//   node gpu-check.mjs [--expect-pid <pid>] [--expect-mib <n>] [--image-cuda <x.y>] [--json]
// Exit code: 0 when nvidia-smi answered (and the expected pid was found holding ≥ expect-mib).
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { formatMiB } from "./contract/units";
import { readGpuLedger } from "./ops/gpu-ledger";
import { containerIdFromCgroup } from "./ops/nvidia";
import { cudaMismatch, readPreflight } from "./ops/preflight";

async function dockerRuntimes(): Promise<Record<string, unknown> | undefined> {
  // Without Docker (or its socket) the runtime part of the preflight says so; nothing else depends on it.
  try {
    const { request } = await import("node:http");
    return await new Promise((resolve) => {
      const req = request({ socketPath: "/var/run/docker.sock", path: "/info", timeout: 3000 }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => {
          try {
            resolve((JSON.parse(body) as { Runtimes?: Record<string, unknown> }).Runtimes);
          } catch {
            resolve(undefined);
          }
        });
      });
      req.on("error", () => resolve(undefined));
      req.on("timeout", () => (req.destroy(), resolve(undefined)));
      req.end();
    });
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { "expect-pid": { type: "string" }, "expect-mib": { type: "string" }, "image-cuda": { type: "string" }, baseline: { type: "string" }, json: { type: "boolean" } },
  });
  const t0 = Date.now();
  const runtimes = await dockerRuntimes();
  const [ledger, preflight] = await Promise.all([readGpuLedger(), readPreflight(runtimes)]);
  const cgroups: Record<number, string> = {};
  for (const g of ledger ?? []) for (const h of g.holders) cgroups[h.pid] = await readFile(`/proc/${h.pid}/cgroup`, "utf8").catch((e: Error) => `unreadable: ${e.message}`);
  const report = { ledger, preflight, dockerRuntimes: runtimes ? Object.keys(runtimes) : null, cgroups, ms: Date.now() - t0 };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log("== GPU preflight");
    if (!preflight) console.log("nvidia-smi did not answer: no NVIDIA driver here");
    else {
      console.log(`driver ${preflight.driverVersion ?? "?"} · supports CUDA ${preflight.cudaVersion ?? "?"} · container toolkit: ${preflight.toolkit}${runtimes ? "" : " (no Docker engine answered)"}`);
      for (const p of preflight.problems) console.log(`problem: ${p}`);
      const imageCuda = values["image-cuda"];
      if (imageCuda) console.log(`image CUDA ${imageCuda}: ${cudaMismatch(imageCuda, preflight.cudaVersion) ?? "fits the driver"}`);
      for (const probe of ["12.2", "12.6", "13.0"]) console.log(`  an image needing CUDA ${probe}: ${cudaMismatch(probe, preflight.cudaVersion) ?? "would start"}`);
    }
    console.log("== GPU ledger");
    for (const g of ledger ?? []) {
      console.log(`GPU ${g.index} ${g.name} (${g.uuid}): ${formatMiB(g.usedMiB)} used of ${formatMiB(g.totalMiB)}, ${formatMiB(g.freeMiB)} free${g.utilizationPct !== undefined ? `, ${g.utilizationPct} % busy` : ""}${g.mig ? ", MIG on" : ""}`);
      if (!g.holders.length) console.log("  no compute processes");
      for (const h of g.holders) {
        const cg = cgroups[h.pid] ?? "";
        const firstLine = cg.split("\n").find((l) => l.trim()) ?? "";
        console.log(`  pid ${h.pid}: ${h.memoryMiB === null ? "memory not reported" : formatMiB(h.memoryMiB)} · container ${containerIdFromCgroup(cg)?.slice(0, 12) ?? "none (cgroup " + firstLine.trim() + ")"} · app ${h.app ?? "-"}`);
      }
    }
    console.log(`(read in ${report.ms} ms)`);
  }
  if (!ledger || !preflight) return 1;
  const pid = values["expect-pid"] ? Number(values["expect-pid"]) : undefined;
  if (pid !== undefined) {
    const min = Number(values["expect-mib"] ?? "1");
    const held = ledger.flatMap((g) => g.holders).filter((h) => h.pid === pid);
    const mib = held.reduce((s, h) => s + (h.memoryMiB ?? 0), 0);
    console.log(held.length ? `expected pid ${pid}: found, holding ${formatMiB(mib)}` : `expected pid ${pid}: NOT in nvidia-smi's compute processes`);
    // Memory used per GPU before the process started ("used0,used1"): its growth shows the
    // allocation even where nvidia-smi lists no processes (inside a container's PID namespace).
    const baseline = values.baseline?.split(",").map(Number) ?? [];
    for (const g of ledger) {
      const before = baseline[g.index];
      if (before !== undefined && Number.isFinite(before)) console.log(`GPU ${g.index}: memory used grew by ${formatMiB(Math.max(0, g.usedMiB - before))} since the process started`);
    }
    if (!held.length) {
      const others = ledger.flatMap((g) => g.holders).filter((h) => (h.memoryMiB ?? 0) >= min);
      if (others.length) console.log(`processes holding ≥ ${formatMiB(min)} under other pids: ${others.map((h) => h.pid).join(", ")} (nvidia-smi reports host pids; this shell may be in another PID namespace)`);
      return 3;
    }
    if (mib < min) return 2;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`gpu-check failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
