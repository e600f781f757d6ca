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
  // ---- gateway: the host's HTTPS gateway (absent or null: none)
  gateway: GatewayFactsSchema.nullable().optional(),
  // ---- end gateway
});
export type HostFacts = z.infer<typeof HostFactsSchema>;

/** GPUs the host can hand to containers: reported by nvidia-smi and usable through the NVIDIA runtime. */
export function usableGpus(facts: HostFacts | null | undefined): GpuInfo[] {
  if (!facts?.nvidia?.runtime) return [];
  return facts.nvidia.gpus;
}
