import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildPreflight, cudaMismatch, imageCudaVersion, parseDriverInfo, toolkitOf } from "./preflight";

const fx = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", name), "utf8");

describe("preflight", () => {
  it("reads driver and CUDA versions from several drivers' output (table and -q)", () => {
    expect(parseDriverInfo(fx("nvidia-smi-535-a100.txt"))).toEqual({ driverVersion: "535.104.05", cudaVersion: "12.2" });
    expect(parseDriverInfo(fx("nvidia-smi-470-t4.txt"))).toEqual({ driverVersion: "470.223.02", cudaVersion: "11.4" });
    expect(parseDriverInfo(fx("nvidia-smi-q-560-h100-mig.txt"))).toEqual({ driverVersion: "560.35.03", cudaVersion: "12.6" });
    expect(parseDriverInfo("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")).toEqual({ driverVersion: null, cudaVersion: null });
  });

  it("reads an image's CUDA from NVIDIA_REQUIRE_CUDA, CUDA_VERSION or a label", () => {
    const inspect = JSON.parse(fx("docker-image-inspect-cuda.json")) as { Config: { Env: string[] } };
    expect(imageCudaVersion(inspect.Config)).toBe("12.6");
    expect(imageCudaVersion({ Env: ["CUDA_VERSION=11.8.0"] })).toBe("11.8");
    expect(imageCudaVersion({ Env: ["PATH=/bin"], Labels: { "com.nvidia.cuda.version": "12.1.1" } })).toBe("12.1");
    expect(imageCudaVersion({ Env: ["PATH=/bin"] })).toBeNull();
    expect(imageCudaVersion(null)).toBeNull();
  });

  it("says when the image needs a newer CUDA than the driver supports", () => {
    expect(cudaMismatch("12.6", "12.2")).toBe("image needs CUDA 12.6, driver supports 12.2");
    expect(cudaMismatch("12.1", "11.4")).toBe("image needs CUDA 12.1, driver supports 11.4");
    expect(cudaMismatch("11.8", "12.2")).toBeNull();
    expect(cudaMismatch("12.2", "12.2")).toBeNull();
    expect(cudaMismatch(null, "12.2")).toBeNull();
    expect(cudaMismatch("12.6", null)).toBeNull();
  });

  it("finds the container toolkit: nvidia runtime, CDI specs, or neither", () => {
    expect(toolkitOf({ runc: {}, nvidia: { path: "nvidia-container-runtime" } }, [])).toBe("runtime");
    expect(toolkitOf({ runc: {} }, ["nvidia.yaml"])).toBe("cdi");
    expect(toolkitOf({ nvidia: {} }, ["nvidia.json"])).toBe("runtime+cdi");
    expect(toolkitOf({ runc: {} }, ["other.yaml"])).toBe("none");
    const p = buildPreflight(fx("nvidia-smi-535-a100.txt"), { runc: {} }, [], true);
    expect(p).toMatchObject({ driverVersion: "535.104.05", cudaVersion: "12.2", toolkit: "none" });
    expect(p.problems[0]).toMatch(/nvidia-container-toolkit/);
    expect(buildPreflight(fx("nvidia-smi-470-t4.txt"), { nvidia: {} }, [], true).problems).toEqual([]);
  });
});
