// What the agent reports about its machine in hello: Docker and compose versions, NVIDIA runtime
// and GPUs, addresses. Each probe failing only leaves its field empty.
import type Dockerode from "dockerode";
import { arch, cpus, hostname, networkInterfaces, release, totalmem, type } from "node:os";
import type { HostFacts } from "../contract/facts";
import type { ComposeOps } from "./compose";
import type { Exec } from "./exec";
import { readNvidiaFacts } from "./nvidia";
import type { GpuLedgerEntry } from "../contract/facts";
import { measureModelStore } from "./model-store";
import { readPreflight } from "./preflight";

export interface FactsSources {
  docker: Dockerode;
  compose: ComposeOps;
  exec?: Exec;
  agentVersion?: string;
  workspaceRoot?: string;
  /** The shared model store, measured per top-level folder. */
  modelsDir?: string;
  gpuLedger?: () => Promise<GpuLedgerEntry[] | null>;
}

export function hostAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const ni of list ?? []) if (!ni.internal) out.push(ni.address);
  }
  return out.slice(0, 32);
}

export async function collectHostFacts(src: FactsSources): Promise<HostFacts> {
  const facts: HostFacts = {
    hostname: hostname().slice(0, 253),
    os: `${type()} ${release()}`.slice(0, 200),
    arch: arch(),
    cpus: cpus().length,
    memoryMiB: Math.round(totalmem() / 1024 / 1024),
    addresses: hostAddresses(),
  };
  if (src.agentVersion) facts.agentVersion = src.agentVersion;
  if (src.workspaceRoot) facts.workspaceRoot = src.workspaceRoot;
  let runtimes: Record<string, unknown> = {};
  try {
    const v = await src.docker.version();
    facts.docker = { version: v.Version, apiVersion: v.ApiVersion };
    runtimes = ((await src.docker.info()) as { Runtimes?: Record<string, unknown> }).Runtimes ?? {};
  } catch {
    facts.docker = null;
  }
  try {
    facts.compose = await src.compose.version();
  } catch {
    facts.compose = null;
  }
  facts.nvidia = await readNvidiaFacts("nvidia" in runtimes, src.exec);
  // GPU ledger, preflight and model store: each one's failure only leaves it out.
  if (facts.nvidia) {
    facts.preflight = await readPreflight(runtimes, src.exec).catch(() => null);
    const ledger = src.gpuLedger ? await src.gpuLedger().catch(() => null) : null;
    if (ledger) facts.gpuLedger = ledger;
  }
  if (src.modelsDir) facts.modelStore = await measureModelStore(src.modelsDir).catch(() => null);
  return facts;
}
