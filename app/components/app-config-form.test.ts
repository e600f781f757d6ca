import { describe, expect, it } from "vitest";
import { configFromForm, sectionErrors } from "./app-config-form";

const form = (entries: [string, string][]) => {
  const f = new FormData();
  for (const [k, v] of entries) f.append(k, v);
  return f;
};

describe("configFromForm", () => {
  it("turns rows into env, secrets and the git credential, exactly as typed", () => {
    const f = form([
      ["envName", "A"], ["envValue", " $HOME x "],
      ["envName", ""], ["envValue", ""],
      ["secretName", "HF_TOKEN"], ["secretValue", "hf_abc"],
      ["secretName", "UNSET"], ["secretValue", ""],
      ["secretRemove", "OLD"],
      ["gitUsername", ""], ["gitToken", "ghp_x"],
    ]);
    expect(configFromForm(f)).toEqual({ env: { A: " $HOME x " }, secrets: { HF_TOKEN: "hf_abc", OLD: null }, gitCredential: { token: "ghp_x" } });
  });

  it("leaves out what the form did not give; removal of the credential is null", () => {
    expect(configFromForm(form([]))).toEqual({});
    expect(configFromForm(form([["gitRemove", "on"]]))).toEqual({ gitCredential: null });
    expect(configFromForm(form([["envName", "a b"], ["envValue", "1"]]))).toEqual({ env: { "a b": "1" } });
  });

  it("picks a section's errors", () => {
    expect(sectionErrors({ "env.A": "x", envy: "y", "secrets.B": "z", port: "p" }, "env")).toEqual([["env.A", "x"]]);
  });
});
