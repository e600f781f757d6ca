// What an agent reports about its machine in hello; the console places apps by it.
import { z } from "zod";
import { GatewayFactsSchema } from "./gateway";

export const GpuInfoSchema = z.object({
  index: z.number().int().min(0),
  uuid: z.string().max(128),
  name: z.string().max(200),
  memoryMiB: z.number().int().min(0),
  memoryUsedMiB: z.number().int().min(0).optional(),
  utilizationPct: z.number().min(0).max(100).optional(),
});
export type GpuInfo = z.infer<typeof GpuInfoSchema>;

export const HostFactsSchema = z.object({
  agentVersion: z.string().max(64).optional(),
  hostname: z.string().max(253).optional(),
  os: z.string().max(200).optional(),
  arch: z.string().max(32).optional(),
  cpus: z.number().int().min(0).optional(),
  memoryMiB: z.number().int().min(0).optional(),
  docker: z.object({ version: z.string().max(64), apiVersion: z.string().max(16).optional() }).nullable().optional(),
  compose: z.object({ variant: z.enum(["plugin", "standalone"]), version: z.string().max(64) }).nullable().optional(),
  nvidia: z
    .object({
      runtime: z.boolean(),
      driverVersion: z.string().max(64).optional(),
      gpus: z.array(GpuInfoSchema).max(64),
    })
    .nullable()
    .optional(),
  addresses: z.array(z.string().max(64)).max(32).optional(),
  workspaceRoot: z.string().max(4096).optional(),
  // GPU ledger, preflight and model store (see the block below).
  gpuLedger: z.lazy(() => z.array(GpuLedgerEntrySchema).max(64)).optional(),
  preflight: z.lazy(() => PreflightSchema.nullable()).optional(),
  modelStore: z.lazy(() => ModelStoreSchema.nullable()).optional(),
  // ---- gateway: the host's HTTPS gateway (absent or null: none)
  gateway: GatewayFactsSchema.nullable().optional(),
  // ---- end gateway
});
export type HostFacts = z.infer<typeof HostFactsSchema>;

const StoredFacts = HostFactsSchema.catch({});
/** Facts as the console stored them: what does not parse counts as nothing reported (the schema is built once). */
export function readHostFacts(raw: unknown): HostFacts {
  return StoredFacts.parse(raw ?? {});
}

/** GPUs the host can hand to containers: reported by nvidia-smi and usable through the NVIDIA runtime. */
export function usableGpus(facts: HostFacts | null | undefined): GpuInfo[] {
  if (!facts?.nvidia?.runtime) return [];
  return facts.nvidia.gpus;
}

// ---------------------------------------------------------------- GPU ledger, preflight, model store
// Reported in facts at hello and again periodically (the `facts` message): who holds each GPU's
// memory, what the driver and container toolkit support, and how big the shared model store is.

export const GpuHolderSchema = z.object({
  /** The app whose container holds the memory; null for a process outside any managed container. */
  app: z.string().max(63).nullable(),
  pid: z.number().int().min(0),
  /** Null when nvidia-smi does not tell (MIG mode, [N/A]). */
  memoryMiB: z.number().int().min(0).nullable(),
  /** The container the process runs in (short id), null when its cgroup names none. */
  container: z.string().max(64).nullable(),
});
export const GpuLedgerEntrySchema = z.object({
  index: z.number().int().min(0),
  uuid: z.string().max(128),
  name: z.string().max(200),
  totalMiB: z.number().int().min(0),
  usedMiB: z.number().int().min(0),
  freeMiB: z.number().int().min(0),
  utilizationPct: z.number().min(0).max(100).optional(),
  mig: z.boolean().optional(),
  holders: z.array(GpuHolderSchema).max(256),
});
export type GpuLedgerEntry = z.infer<typeof GpuLedgerEntrySchema>;
export type GpuHolder = z.infer<typeof GpuHolderSchema>;

export const PreflightSchema = z.object({
  driverVersion: z.string().max(64).nullable(),
  /** The newest CUDA version the driver supports ("12.2"), from nvidia-smi. */
  cudaVersion: z.string().max(16).nullable(),
  /** How containers get GPUs: Docker's nvidia runtime, CDI specs, both, or none. */
  toolkit: z.enum(["runtime", "cdi", "runtime+cdi", "none"]),
  problems: z.array(z.string().max(400)).max(16),
});
export type Preflight = z.infer<typeof PreflightSchema>;

export const ModelStoreSchema = z.object({
  path: z.string().max(4096),
  totalBytes: z.number().int().min(0),
  /** Size per top-level folder (Stable-diffusion, Lora, checkpoints, …), largest first. */
  folders: z.array(z.object({ name: z.string().max(255), bytes: z.number().int().min(0) })).max(64),
  /** True when the walk stopped at its file limit: sizes are lower bounds. */
  partial: z.boolean(),
  at: z.string().max(40),
});
export type ModelStore = z.infer<typeof ModelStoreSchema>;
