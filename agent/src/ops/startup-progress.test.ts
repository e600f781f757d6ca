import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StartupProgressParser, parseProgressLine } from "./startup-progress";

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures/startup", name), "utf8");

/** Feeds a recorded output in small chunks (as a log stream delivers it) and collects each change. */
function replay(text: string, chunk = 17) {
  const p = new StartupProgressParser(() => Date.parse("2026-01-01T00:00:00Z"));
  const seen: { label: string; percent: number | null }[] = [];
  for (let i = 0; i < text.length; i += chunk) {
    if (p.push(text.slice(i, i + chunk))) {
      const c = p.get()!;
      seen.push({ label: c.label, percent: c.percent });
    }
  }
  return seen;
}

describe("startup progress", () => {
  it("follows a tqdm bar redrawn with \\r (huggingface_hub download)", () => {
    const seen = replay(fixture("tqdm-hf.txt"));
    expect(seen.map((s) => s.percent)).toEqual([0, 10, 42, 77]);
    expect(seen.at(-1)!.label).toBe("downloading sd_xl_base_1.0.safetensors");
  });

  it("reads huggingface snapshot bars with colour codes and a truncated name", () => {
    const seen = replay(fixture("hf-snapshot.txt"), 5);
    expect(seen.map((s) => s.percent)).toEqual([0, 33, 55]);
    expect(seen[1]!.label).toBe("fetching 12 files");
    expect(seen[2]!.label).toBe("downloading (…)ion_pytorch_model.fp16.safetensors");
  });

  it("reads pip's Downloading lines and its bar", () => {
    const seen = replay(fixture("pip.txt"));
    expect(seen).toEqual([
      { label: "downloading torch-2.3.0-cp310-cp310-manylinux1_x86_64.whl (779.1 MB)", percent: null },
      { label: "pip downloading", percent: 40 },
      { label: "downloading numpy-1.26.4-cp310-cp310-manylinux_2_17_x86_64.whl (18.2 MB)", percent: null },
    ]);
  });

  it("reads aria2 summaries and the file it names", () => {
    const seen = replay(fixture("aria2.txt"));
    expect(seen).toEqual([
      { label: "downloading (aria2)", percent: 18 },
      { label: "downloading sd_xl_base_1.0.safetensors", percent: null },
      { label: "downloading (aria2)", percent: 76 },
    ]);
  });

  it("reads git-lfs object progress", () => {
    expect(replay(fixture("git-lfs.txt")).map((s) => s.percent)).toEqual([42, 100]);
  });

  it("ignores ordinary output and the same figure twice", () => {
    const p = new StartupProgressParser();
    expect(p.push("Running on local URL:  http://0.0.0.0:7860\n")).toBe(false);
    expect(p.push("model.bin:  50%|█████     | 1/2\r")).toBe(true);
    expect(p.push("model.bin:  50%|█████     | 1/2\r")).toBe(false);
    expect(p.get()).toMatchObject({ label: "downloading model.bin", percent: 50 });
    p.reset();
    expect(p.get()).toBeNull();
  });

  it("caps the label and the percent", () => {
    const long = `${"x".repeat(500)}: 100%|██████████| 1/1`;
    expect(parseProgressLine(long)!.label.length).toBeLessThanOrEqual(200);
    expect(parseProgressLine("a: 999%|█|")!.percent).toBe(100);
  });
});
