// The GPU gate before an app's container starts: its image must want no newer CUDA than the driver
// supports, and each GPU assigned to it must have the memory it asks for free (its own processes
// count as free). A refusal names the reason and who holds the memory; `force` lets it through.
import type { GpuLedgerEntry, Preflight } from "../contract/facts";
import type { DeploySpec } from "../contract/spec";
import { OpsError } from "./errors";
import { gpuShortfall } from "./gpu-ledger";
import { cudaMismatch, imageCudaVersion, type ImageConfig } from "./preflight";

export interface GpuGateSources {
  ledger: () => Promise<GpuLedgerEntry[] | null>;
  preflight: () => Promise<Preflight | null>;
  imageConfig: (image: string) => Promise<ImageConfig | null>;
}

export class GpuGate {
  private cachedPreflight: { at: number; value: Preflight | null } | null = null;

  constructor(private readonly s: GpuGateSources) {}

  /** Why the app cannot start on its GPUs now, or null. Apps without GPUs always pass. */
  async check(spec: Pick<DeploySpec, "name" | "image" | "gpuDevices" | "gpuMinMemoryMiB">): Promise<string | null> {
    if (spec.gpuDevices.length === 0) return null;
    const preflight = await this.preflight();
    const mismatch = cudaMismatch(imageCudaVersion(await this.s.imageConfig(spec.image).catch(() => null)), preflight?.cudaVersion ?? null);
    if (mismatch) return mismatch;
    if (spec.gpuMinMemoryMiB) {
      const ledger = await this.s.ledger().catch(() => null);
      if (ledger) return gpuShortfall(ledger, spec.gpuDevices, spec.gpuMinMemoryMiB, spec.name);
    }
    return null;
  }

  /** Throws the refusal (INVALID: nothing was changed) unless forced. */
  async assert(spec: Pick<DeploySpec, "name" | "image" | "gpuDevices" | "gpuMinMemoryMiB">, force: boolean | undefined): Promise<void> {
    if (force) return;
    const why = await this.check(spec);
    if (why) throw new OpsError("INVALID", `${why} (start with force to try anyway)`);
  }

  private async preflight(): Promise<Preflight | null> {
    // The driver does not change under a running agent often: one nvidia-smi call a minute at most.
    if (this.cachedPreflight && Date.now() - this.cachedPreflight.at < 60_000) return this.cachedPreflight.value;
    const value = await this.s.preflight().catch(() => null);
    this.cachedPreflight = { at: Date.now(), value };
    return value;
  }
}
