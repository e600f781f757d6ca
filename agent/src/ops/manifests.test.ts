import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scanWorkspace } from "./dependencies";
import {
  manifestKind,
  parseCondaEnvironment,
  parsePackageLock,
  parsePep508,
  parsePipfileLock,
  parsePyproject,
  parseRequirements,
  parseTomlLock,
} from "./manifests";

const fixture = (name: string) => readFile(join(import.meta.dirname, "fixtures/manifests", name), "utf8");
const pins = (list: { name: string; version: string | null }[]) => Object.fromEntries(list.map((p) => [p.name, p.version]));

describe("manifest parsers", () => {
  it("requirements.txt: exact pins, ranges as unpinned, options, hashes, markers, includes", async () => {
    const r = parseRequirements(await fixture("requirements.txt"));
    expect(r.includes).toEqual(["requirements-base.txt"]);
    expect(pins(r.packages)).toEqual({
      jinja2: "2.10",
      torch: null,
      transformers: "4.30.2",
      pillow: "9.5.0",
      accelerate: "0.21.0",
      numpy: null, // ==1.26.* is a range
      safetensors: "0.3.1",
      clip: null, // a direct URL reference
      gradio: null,
    });
    expect(r.packages.every((p) => p.ecosystem === "PyPI")).toBe(true);
  });

  it("PEP 508 strings", () => {
    expect(parsePep508("Foo_Bar.baz[x,y] (==1.0) ; sys_platform == 'linux'")).toEqual({ name: "foo-bar-baz", version: "1.0", ecosystem: "PyPI" });
    expect(parsePep508("foo>=1,<2")).toMatchObject({ version: null });
    expect(parsePep508("foo==1.0,!=1.1")).toMatchObject({ version: null });
  });

  it("pyproject.toml: PEP 621 dependencies and extras, Poetry tables (python skipped)", async () => {
    expect(pins(parsePyproject(await fixture("pyproject.toml")))).toEqual({
      fastapi: "0.95.0",
      uvicorn: null,
      pydantic: "1.10.2",
      pytest: "7.4.0",
      flask: "2.2.2",
      aiohttp: null,
      pyyaml: "5.3",
      mock: null,
    });
  });

  it("poetry.lock and uv.lock: resolved versions; uv's editable project itself is left out", async () => {
    expect(pins(parseTomlLock(await fixture("poetry.lock")))).toEqual({ jinja2: "2.10", markupsafe: "2.1.3" });
    expect(pins(parseTomlLock(await fixture("uv.lock")))).toEqual({ requests: "2.31.0", "charset-normalizer": "3.3.2" });
  });

  it("Pipfile.lock: default and develop", async () => {
    expect(pins(parsePipfileLock(await fixture("Pipfile.lock")))).toEqual({ django: "2.2.0", sqlparse: "0.4.4", black: "23.3.0", "editable-thing": null });
  });

  it("environment.yml: conda specs (python and pip left out) and the pip list as PyPI", async () => {
    const list = parseCondaEnvironment(await fixture("environment.yml"));
    expect(list.filter((p) => p.ecosystem === "conda").map((p) => [p.name, p.version])).toEqual([
      ["pytorch", "2.0.1"],
      ["cudatoolkit", null], // =11.8 is a conda prefix match
      ["numpy", "1.24.3"],
      ["scipy", null],
    ]);
    expect(list.filter((p) => p.ecosystem === "PyPI").map((p) => [p.name, p.version])).toEqual([
      ["gradio", "3.33.1"],
      ["sentencepiece", null],
    ]);
  });

  it("package-lock.json v3 (nested and scoped, links skipped) and v1", async () => {
    const v3 = parsePackageLock(await fixture("package-lock.json"));
    expect(v3.map((p) => [p.name, p.version])).toEqual([
      ["lodash", "4.17.20"],
      ["@babel/traverse", "7.22.5"],
      ["minimist", "1.2.0"],
    ]);
    expect(v3.every((p) => p.ecosystem === "npm")).toBe(true);
    expect(parsePackageLock(await fixture("package-lock-v1.json")).map((p) => [p.name, p.version])).toEqual([
      ["minimist", "0.0.8"],
      ["mkdirp", "0.5.1"],
      ["minimist", "0.0.10"],
      ["git-dep", null],
    ]);
  });

  it("manifest kinds by path", () => {
    expect(manifestKind("requirements.txt")).toBe("requirements");
    expect(manifestKind("x/requirements-dev.txt")).toBe("requirements");
    expect(manifestKind("requirements/gpu.txt")).toBe("requirements");
    expect(manifestKind("requirements.in")).toBeNull();
    expect(manifestKind("a/package-lock.json")).toBe("package-lock");
    expect(manifestKind("package.json")).toBeNull();
  });
});

describe("scanWorkspace", () => {
  it("follows -r includes inside the workspace only, skips installed trees and symbolic links", async () => {
    const ws = await mkdtemp(join(tmpdir(), "dcc-manifests-"));
    try {
      await mkdir(join(ws, "sub"));
      await mkdir(join(ws, "requirements"));
      await mkdir(join(ws, "node_modules/x"), { recursive: true });
      await mkdir(join(ws, "custom_nodes/ext"), { recursive: true });
      await writeFile(join(ws, "requirements.txt"), "jinja2==2.10\n-r sub/extra.txt\n-r ../../../../etc/hostname\n");
      await writeFile(join(ws, "sub/extra.txt"), "flask==0.12\n-r ../requirements.txt\n");
      await writeFile(join(ws, "requirements/gpu.txt"), "torch==2.0.0\n");
      await writeFile(join(ws, "node_modules/x/requirements.txt"), "ignored==1\n");
      await writeFile(join(ws, "custom_nodes/ext/requirements.txt"), "jinja2==2.10\nopencv-python\n");
      await writeFile(join(ws, "custom_nodes/ext/package-lock.json"), await fixture("package-lock.json"));
      await symlink("/etc/passwd", join(ws, "requirements-evil.txt"));
      const inv = await scanWorkspace(ws);
      expect(inv.packages.map((p) => `${p.ecosystem}:${p.name}@${p.version}<${p.manifest}`).sort()).toEqual(
        [
          "PyPI:jinja2@2.10<requirements.txt",
          "PyPI:flask@0.12<sub/extra.txt",
          "PyPI:torch@2.0.0<requirements/gpu.txt",
          "PyPI:opencv-python@null<custom_nodes/ext/requirements.txt",
          "npm:lodash@4.17.20<custom_nodes/ext/package-lock.json",
          "npm:@babel/traverse@7.22.5<custom_nodes/ext/package-lock.json",
          "npm:minimist@1.2.0<custom_nodes/ext/package-lock.json",
        ].sort(),
      );
      expect(inv.manifests).toContain("sub/extra.txt");
      expect(inv.manifests).not.toContain("requirements-evil.txt");
      expect(inv.problems).toEqual([{ manifest: "requirements.txt", error: "include ../../../../etc/hostname is outside the workspace" }]);
      expect(inv.truncated).toBe(false);
    } finally {
      await rm(ws, { recursive: true, force: true });
    }
  });
});
