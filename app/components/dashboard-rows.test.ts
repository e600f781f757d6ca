import { decodeRows, matcher, progressText, visibleRows, type DashboardHost, type RowTuple } from "./dashboard-rows";

const hosts: DashboardHost[] = [
  { id: "h1", name: "gpu-one", online: true, address: null },
  { id: "h2", name: "gpu-two", online: false, address: null },
];
const tuples: RowTuple[] = [
  ["alpha", "RUNNING", "reachable", null, null, 0, 8001, "abcdef12", "comfyui", "2026-01-01T00:00:00Z", { cpuPct: 3 }, ["high", 2], null, ["0"]],
  ["beta", "STOPPED", "unknown", null, "exit 1", 1, 8000, null, null, null, null, null, null, null],
  ["gamma", "STARTING", "unknown", "clone", null, -1, 8002, null, null, null, null, null, { label: "downloading sd_xl_base_1.0.safetensors", percent: 42 }, null],
];

describe("dashboard rows", () => {
  const rows = decodeRows(tuples, hosts);

  it("decodes the compact tuples with the host's name and presence", () => {
    expect(rows[0]).toMatchObject({ name: "alpha", hostId: "h1", hostName: "gpu-one", hostOnline: true, port: 8001, vulns: { severity: "high", count: 2 }, usage: { cpuPct: 3 } });
    expect(rows[1]).toMatchObject({ hostName: "gpu-two", hostOnline: false, lastError: "exit 1" });
    expect(rows[2]).toMatchObject({ hostId: null, hostName: null, hostOnline: false, phase: "clone", progress: { percent: 42 }, gpuDevices: [] });
    expect(rows[0]!.gpuDevices).toEqual(["0"]);
    expect(progressText(rows[2]!.progress!)).toBe("downloading sd_xl_base_1.0.safetensors 42 %");
    expect(progressText({ label: "downloading torch.whl (779.1 MB)", percent: null })).toBe("downloading torch.whl (779.1 MB)");
  });

  it("filters by words that must all match, narrowed by name:, status: and host:", () => {
    const names = (q: string) => rows.filter(matcher(q) ?? (() => true)).map((r) => r.name);
    expect(matcher("  ")).toBeNull();
    expect(names("gpu")).toEqual(["alpha", "beta"]);
    expect(names("status:stop")).toEqual(["beta"]);
    expect(names("status:grey")).toEqual(["beta", "gamma"]);
    expect(names("host:two")).toEqual(["beta"]);
    expect(names("comfy running")).toEqual(["alpha"]);
    expect(names("name:gpu")).toEqual([]);
  });

  it("sorts by name, port or status (attention first), either way", () => {
    const names = (r: typeof rows) => r.map((x) => x.name);
    expect(names(visibleRows(rows, "", { key: "name", dir: 1 }))).toEqual(["alpha", "beta", "gamma"]);
    expect(names(visibleRows(rows, "", { key: "name", dir: -1 }))).toEqual(["gamma", "beta", "alpha"]);
    expect(names(visibleRows(rows, "", { key: "port", dir: 1 }))).toEqual(["beta", "alpha", "gamma"]);
    expect(names(visibleRows(rows, "", { key: "status", dir: 1 }))).toEqual(["beta", "gamma", "alpha"]);
    expect(names(visibleRows([rows[2]!, rows[0]!], "", { key: "name", dir: 1 }))).toEqual(["alpha", "gamma"]);
    // The input list is never reordered in place.
    expect(names(rows)).toEqual(["alpha", "beta", "gamma"]);
  });
});
