import { describe, expect, it } from "vitest";
import type { AgentMessage } from "./contract/protocol";
import { DependencyReporter } from "./dependency-reporter";

const tick = () => new Promise((r) => setTimeout(r, 10));

describe("DependencyReporter", () => {
  it("scans after a deploy at a new commit only, and holds the inventory until the console is there", async () => {
    const sent: AgentMessage[] = [];
    let connected = false;
    const scanned: string[] = [];
    const r = new DependencyReporter({
      send: (m) => (connected ? (sent.push(m), true) : false),
      log: () => {},
      scan: async (ws) => {
        scanned.push(ws);
        return { packages: [{ name: "jinja2", version: "2.10", ecosystem: "PyPI", manifest: "requirements.txt" }], manifests: ["requirements.txt"], truncated: false, problems: [] };
      },
    });
    r.deployed("comfy", "a".repeat(40), "/ws/comfy");
    await tick();
    expect(sent).toEqual([]);
    connected = true;
    r.flush();
    expect(sent).toEqual([{ type: "dependencies", app: "comfy", commitSha: "a".repeat(40), packages: [{ name: "jinja2", version: "2.10", ecosystem: "PyPI", manifest: "requirements.txt" }], manifests: ["requirements.txt"] }]);
    r.deployed("comfy", "a".repeat(40), "/ws/comfy"); // an update that kept the commit
    await tick();
    expect(scanned).toHaveLength(1);
    r.deployed("comfy", "b".repeat(40), "/ws/comfy");
    await tick();
    expect(sent.map((m) => (m as { commitSha: string }).commitSha)).toEqual(["a".repeat(40), "b".repeat(40)]);
  });
});
