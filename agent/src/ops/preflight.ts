// Preflight of a GPU host and of an app's image: the driver's version and the newest CUDA it
// supports (nvidia-smi's header or `-q`), how containers get GPUs (Docker's nvidia runtime or CDI
// specs), and the CUDA an image was built for (its NVIDIA_REQUIRE_CUDA / CUDA_VERSION env or label),
// so an app that the driver cannot run is refused with the reason instead of crash-looping.
import { readdir } from "node:fs/promises";
import type { Preflight } from "../contract/facts";
import { exec as realExec, type Exec } from "./exec";

/** Driver version and supported CUDA version from `nvidia-smi` (table header) or `nvidia-smi -q`. */
export function parseDriverInfo(text: string): { driverVersion: string | null; cudaVersion: string | null } {
  const driver = /Driver Version\s*:\s*([\d.]+)/.exec(text);
  const cuda = /CUDA Version\s*:\s*([\d.]+)/.exec(text);
  return { driverVersion: driver?.[1] ?? null, cudaVersion: cuda?.[1] ?? null };
}

/** "12.6.3" → [12, 6]; null when not a version. */
export function majorMinor(v: string): [number, number] | null {
  const m = /^(\d+)(?:\.(\d+))?/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2] ?? 0)] : null;
}

export interface ImageConfig {
  Env?: string[] | null;
  Labels?: Record<string, string> | null;
}

/**
 * The CUDA version an image needs, as major.minor: NVIDIA's images say `NVIDIA_REQUIRE_CUDA=cuda>=12.6 …`
 * (the toolkit enforces it), else `CUDA_VERSION=12.6.3`, else a `com.nvidia.cuda.version` label.
 */
export function imageCudaVersion(config: ImageConfig | null | undefined): string | null {
  const env = new Map<string, string>();
  for (const e of config?.Env ?? []) {
    const i = e.indexOf("=");
    if (i > 0) env.set(e.slice(0, i), e.slice(i + 1));
  }
  const required = /cuda>=([\d.]+)/.exec(env.get("NVIDIA_REQUIRE_CUDA") ?? "")?.[1];
  const candidate = required ?? env.get("CUDA_VERSION") ?? config?.Labels?.["com.nvidia.cuda.version"] ?? null;
  const mm = candidate ? majorMinor(candidate) : null;
  return mm ? `${mm[0]}.${mm[1]}` : null;
}

/** "image needs CUDA 12.6, driver supports 12.2" when the image wants a newer CUDA than the driver offers. */
export function cudaMismatch(imageCuda: string | null, driverCuda: string | null): string | null {
  if (!imageCuda || !driverCuda) return null;
  const a = majorMinor(imageCuda);
  const b = majorMinor(driverCuda);
  if (!a || !b) return null;
  const newer = a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
  return newer ? `image needs CUDA ${imageCuda}, driver supports ${driverCuda}` : null;
}

/** How containers reach GPUs here. */
export function toolkitOf(runtimes: Record<string, unknown> | undefined, cdiSpecs: string[]): Preflight["toolkit"] {
  const runtime = !!runtimes && "nvidia" in runtimes;
  const cdi = cdiSpecs.some((f) => /nvidia/i.test(f) && /\.(ya?ml|json)$/.test(f));
  return runtime && cdi ? "runtime+cdi" : runtime ? "runtime" : cdi ? "cdi" : "none";
}

/** The host's preflight from what nvidia-smi printed, Docker's runtimes and the CDI spec files found. */
export function buildPreflight(smiText: string | null, runtimes: Record<string, unknown> | undefined, cdiSpecs: string[], hasGpus: boolean): Preflight {
  const { driverVersion, cudaVersion } = smiText ? parseDriverInfo(smiText) : { driverVersion: null, cudaVersion: null };
  const toolkit = toolkitOf(runtimes, cdiSpecs);
  const problems: string[] = [];
  if (hasGpus && !driverVersion) problems.push("nvidia-smi did not report a driver version");
  if (hasGpus && toolkit === "none") problems.push("no NVIDIA container runtime or CDI spec: containers cannot use the GPUs (install nvidia-container-toolkit)");
  return { driverVersion, cudaVersion, toolkit, problems };
}

export const CDI_DIRS = ["/etc/cdi", "/var/run/cdi"];

/** Reads nvidia-smi's header and lists CDI spec files; null when nvidia-smi is absent. */
export async function readPreflight(runtimes: Record<string, unknown> | undefined, run: Exec = realExec, cdiDirs = CDI_DIRS): Promise<Preflight | null> {
  let text: string;
  try {
    text = (await run(["nvidia-smi"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C" }, timeoutMs: 15_000 })).stdout;
  } catch {
    return null;
  }
  const specs: string[] = [];
  for (const dir of cdiDirs) specs.push(...(await readdir(dir).catch(() => [] as string[])));
  return buildPreflight(text, runtimes, specs, true);
}
