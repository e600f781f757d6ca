import { describe, expect, it } from "vitest";
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { parsePrometheusText, sampleSum, sampleValue } from "./prom";

describe("parsePrometheusText", () => {
  it("reads what prom-client writes, escapes and histograms included", async () => {
    const r = new Registry();
    collectDefaultMetrics({ register: r });
    const h = new Histogram({ name: "t_seconds", help: 'odd \\ help\nline', labelNames: ["a"], buckets: [0.1, 1], registers: [r] });
    h.observe({ a: 'q"\n\\' }, 0.5);
    h.observe({ a: 'q"\n\\' }, 5);
    new Counter({ name: "t_total", help: "c", labelNames: ["k"], registers: [r] }).inc({ k: "x" }, 3);
    const f = parsePrometheusText(await r.metrics());
    expect(f.get("t_seconds")).toMatchObject({ type: "histogram", help: "odd \\ help\nline" });
    expect(sampleValue(f, "t_seconds", { a: 'q"\n\\', le: "1" }, "t_seconds_bucket")).toBe(1);
    expect(sampleValue(f, "t_seconds", { a: 'q"\n\\' }, "t_seconds_count")).toBe(2);
    expect(sampleValue(f, "t_total", { k: "x" })).toBe(3);
    expect(sampleSum(f, "t_total")).toBe(3);
    expect(f.get("process_cpu_seconds_total")?.type).toBe("counter");
  });

  it.each([
    ["a bad metric name", "1bad 1\n"],
    ["an unquoted label", "m{a=b} 1\n"],
    ["a bad escape", 'm{a="\\x"} 1\n'],
    ["a non-number", "m 1,5\n"],
    ["a missing final newline", "m 1"],
    ["a TYPE after samples", "m 1\n# TYPE m gauge\n"],
    ["a split family", "a 1\nb 1\na{x=\"1\"} 2\n"],
    ["a duplicate series", 'm{a="1"} 1\nm{a="1"} 2\n'],
    ["an unknown type", "# TYPE m thing\n"],
    ["a negative counter", "# TYPE m_total counter\nm_total -1\n"],
    ["non-cumulative buckets", '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ["+Inf differing from _count", '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n'],
    ["a histogram without _count", '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\n'],
  ])("refuses %s", (_why, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });
});
