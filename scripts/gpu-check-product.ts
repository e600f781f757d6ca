// The product half of scripts/gpu-check.sh: on a host with Docker and an NVIDIA GPU, starts the
// console with its local agent, deploys an app on a CUDA image that allocates 1 GiB of GPU memory
// (torch when the image has it, else the CUDA driver API through ctypes), and prints the host's
// GPU preflight, its GPU ledger and the app's GPU usage as the API reports them.
//   GPU_CHECK_IMAGE   the image (default pytorch/pytorch:2.4.1-cuda12.4-cudnn9-runtime; must have python3)
import { startConsole } from "../tests/support/console";
import { startGitServer } from "../tests/support/git-server";
import { freePort } from "../tests/support/net";

const IMAGE = process.env.GPU_CHECK_IMAGE ?? "pytorch/pytorch:2.4.1-cuda12.4-cudnn9-runtime";
const ALLOC = `import ctypes, http.server, os, sys
try:
    import torch
    x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    how = "torch"
except Exception as e:
    cuda = ctypes.CDLL("libcuda.so.1")
    ctx, ptr = ctypes.c_void_p(), ctypes.c_void_p()
    assert cuda.cuInit(0) == 0 and cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, 0) == 0
    assert cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(2**30)) == 0
    how = "libcuda (%s)" % e
print("allocated 1 GiB with", how, flush=True)
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler).serve_forever()
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const git = await startGitServer();
  const { url } = await git.createRepo("gpu-check", { "alloc.py": ALLOC });
  const c = await startConsole({ env: { DCC_LOCAL_AGENT: "1", DCC_ALLOW_INSECURE_GIT: "1", DCC_FACTS_INTERVAL_MS: "5000", DCC_BASE_IMAGE: IMAGE } });
  try {
    let host: { id: string; facts: Record<string, unknown> } | undefined;
    for (let i = 0; i < 120 && !host; i++) {
      host = (await c.query<{ items: { id: string; online: boolean; facts: Record<string, unknown> }[] }>("hosts.list")).body.result?.data.items.find((h) => h.online);
      if (!host) await sleep(250);
    }
    if (!host) throw new Error(`the local agent did not come online:\n${c.output().slice(-2000)}`);
    console.log("== preflight (hosts.get facts.preflight)");
    console.log(JSON.stringify(host.facts.preflight ?? null, null, 2));
    console.log("== NVIDIA facts");
    console.log(JSON.stringify(host.facts.nvidia ?? null, null, 2));
    const port = await freePort();
    const created = await c.mutate("apps.create", { name: "gpu-check", repository: url, image: IMAGE, startCommand: "python3 alloc.py", port, gpu: { mode: "required", count: 1, minMemoryMiB: 2048 } });
    console.log(`== apps.create: ${created.status} ${created.status === 200 ? "" : JSON.stringify(created.body.error)}`);
    if (created.status !== 200) return 1;
    const t0 = Date.now();
    let app: Record<string, unknown> | undefined;
    while (Date.now() - t0 < 600_000) {
      app = (await c.query<Record<string, unknown>>("apps.get", { name: "gpu-check" })).body.result?.data;
      if (app?.status === "RUNNING" || (app?.status === "STOPPED" && app.lastError)) break;
      if (app && app.hostId === null) {
        console.log(`== the app was not placed: ${app.phase} (this host reports no NVIDIA GPU usable by Docker)`);
        return 1;
      }
      await sleep(1000);
    }
    console.log(`== app after ${Math.round((Date.now() - t0) / 1000)} s: ${app?.status} ${app?.lastError ?? ""} devices ${JSON.stringify(app?.gpuDevices)}`);
    let ledger: unknown = null;
    for (let i = 0; i < 30; i++) {
      const facts = (await c.query<{ facts: { gpuLedger?: { holders: { app: string | null }[] }[] } }>("hosts.get", { id: host.id })).body.result?.data.facts;
      ledger = facts?.gpuLedger ?? null;
      if (facts?.gpuLedger?.some((g) => g.holders.some((h) => h.app === "gpu-check"))) break;
      await sleep(1000);
    }
    console.log("== GPU ledger (hosts.get facts.gpuLedger)");
    console.log(JSON.stringify(ledger, null, 2));
    app = (await c.query<Record<string, unknown>>("apps.get", { name: "gpu-check" })).body.result?.data;
    console.log(`== app usage: ${JSON.stringify(app?.usage ?? null)}`);
    const found = JSON.stringify(ledger).includes('"app":"gpu-check"');
    console.log(`== result: ${found ? "OK: the app's GPU memory is in the ledger" : "the app was not found in the ledger"}`);
    await c.mutate("apps.deinstall", { name: "gpu-check" });
    await sleep(3000);
    return found ? 0 : 2;
  } finally {
    await c.dispose();
    await git.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`gpu-check (product) failed: ${(e as Error).message}`);
    process.exit(1);
  },
);
