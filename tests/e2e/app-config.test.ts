// In Debian's Chromium against the real console: the Environment, Secrets and Git credential
// sections of Add App (template defaults, declared and required secrets, field errors) and the app
// page's Configuration panel (env edit, secret set / replace / remove, git credential), with the
// secret values never shown again and never stored in plain text.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, signIn } from "../support/browser";
import { startConsole, type RunningConsole } from "../support/console";

let c: RunningConsole;
let browser: Browser;
let page: Page;
const CANARY = "hf_canary_5e1b7d93aa";
const CANARY2 = "hf_canary_replaced_0c44";
const TOKEN = "ghp_canary_token_77ab";

const row = async (name: string) => (await c.db().execute({ sql: "SELECT env, secret_names, git_credential_sealed FROM apps WHERE name = ?", args: [name] })).rows[0];
const dbBytes = async () => {
  const main = await readFile(join(c.dataDir, "dcc.db"));
  const wal = await readFile(join(c.dataDir, "dcc.db-wal")).catch(() => Buffer.alloc(0));
  return Buffer.concat([main, wal]);
};

beforeAll(async () => {
  c = await startConsole();
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await signIn(page, c);
  await c.db().execute({
    sql: "INSERT INTO marketplace_templates (slug, name, summary, repository, start_command, default_port, secrets, source) VALUES ('gated-model', 'Gated model', 'Needs a token', 'https://github.com/example/gated.git', 'python app.py', 7870, ?, 'promoted')",
    args: [JSON.stringify([{ name: "HF_TOKEN", description: "Hugging Face token for the gated model", required: true }])],
  });
});
afterAll(async () => {
  await browser?.close();
  await c?.dispose();
});

describe("Add App: environment, secrets, git credential", () => {
  it("a template brings its env defaults and declared secrets; bad names are field errors and nothing is added", async () => {
    await page.goto(`${c.url}/apps/new?template=stable-diffusion-webui`);
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.waitFor();
    if ((await dialog.locator("details.advanced").getAttribute("open")) === null) await dialog.locator("summary", { hasText: "Advanced" }).click();
    expect(await dialog.getByLabel("Variable 1", { exact: true }).inputValue()).toBe("COMMANDLINE_ARGS");
    expect(await dialog.getByLabel("Value 1", { exact: true }).inputValue()).toBe("--api");
    expect(await dialog.getByText("Hugging Face access token").count()).toBe(1);

    await dialog.getByLabel("Name", { exact: true }).fill("cfg-ui");
    await dialog.getByRole("button", { name: "Add variable" }).click();
    await dialog.getByLabel("Variable 2", { exact: true }).fill("A");
    await dialog.getByLabel("Value 2", { exact: true }).fill("$HOME x");
    await dialog.getByLabel("HF_TOKEN").fill(CANARY);
    expect(await dialog.getByLabel("HF_TOKEN").getAttribute("type")).toBe("password");
    await dialog.getByRole("button", { name: "Add secret" }).click();
    await dialog.getByLabel("Secret 1", { exact: true }).fill("bad name");
    await dialog.getByLabel("Secret 1 value", { exact: true }).fill("value-1234");
    await dialog.getByRole("button", { name: "Add variable" }).click();
    await dialog.getByLabel("Variable 3", { exact: true }).fill("PORT");
    await dialog.getByLabel("Value 3", { exact: true }).fill("1");
    await dialog.getByRole("button", { name: "Add app" }).click();

    await expect.poll(() => dialog.locator('.field-error[data-field="secrets"]').count()).toBe(1);
    const text = (await dialog.locator(".field-error").allTextContents()).join("\n");
    expect(text).toMatch(/secrets\.bad name must be upper-case/);
    expect(text).toMatch(/env\.PORT is reserved/);
    expect(Number((await c.db().execute("SELECT count(*) AS n FROM apps")).rows[0]!.n)).toBe(0);
    // The value never comes back from the server.
    expect(await page.content()).not.toContain(CANARY);
  });

  it("adds the app once the names are fixed: env kept literally, the secret sealed, the credential write-only", async () => {
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.getByRole("button", { name: "Remove variable PORT" }).click();
    await dialog.locator(".kv-row", { has: page.getByLabel("Secret 1", { exact: true }) }).getByRole("button", { name: "Remove", exact: true }).click();
    await dialog.getByLabel("Git token").fill(TOKEN);
    await dialog.getByRole("button", { name: "Add app" }).click();
    await page.locator('tr[data-app="cfg-ui"]').waitFor();
    const r = await row("cfg-ui");
    expect(JSON.parse(String(r!.env))).toEqual({ COMMANDLINE_ARGS: "--api", A: "$HOME x" });
    expect(JSON.parse(String(r!.secret_names))).toEqual(["HF_TOKEN"]);
    expect(r!.git_credential_sealed).toBeTruthy();
    const bytes = await dbBytes();
    expect(bytes.includes(CANARY)).toBe(false);
    expect(bytes.includes(TOKEN)).toBe(false);
  });

  it("a template's required secret left empty is a field error naming it", async () => {
    await page.goto(`${c.url}/apps/new?template=gated-model`);
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.waitFor();
    expect(await dialog.getByText("HF_TOKEN (required)").count()).toBe(1);
    await dialog.getByLabel("Name", { exact: true }).fill("gated");
    await dialog.getByRole("button", { name: "Add app" }).click();
    await expect.poll(async () => (await dialog.locator(".field-error").allTextContents()).join("\n")).toMatch(/secrets\.HF_TOKEN is required by template gated-model/);
    expect(Number((await c.db().execute("SELECT count(*) AS n FROM apps WHERE name = 'gated'")).rows[0]!.n)).toBe(0);
  });
});

describe("app page: Configuration", () => {
  it("shows env and secret names only; replaces, adds and removes secrets; removes the git credential", async () => {
    await page.goto(`${c.url}/apps/cfg-ui`);
    const panel = page.getByRole("region", { name: "Configuration" });
    await panel.waitFor();
    expect(await panel.locator('[data-secret="HF_TOKEN"]').textContent()).toContain("HF_TOKEN");
    expect(await panel.getByText("Set (write-only).").count()).toBe(1);
    expect(await page.content()).not.toContain(CANARY);
    expect(await page.content()).not.toContain(TOKEN);

    await panel.getByLabel("New value for HF_TOKEN").fill(CANARY2);
    await panel.getByRole("button", { name: "Replace", exact: true }).click();
    await panel.getByText("Saved; the app is being updated.").first().waitFor();
    expect((await dbBytes()).includes(CANARY2)).toBe(false);

    await panel.getByLabel("New secret", { exact: true }).fill("API_KEY");
    await panel.getByLabel("New secret value").fill("sk-canary-9d1e");
    await panel.getByRole("button", { name: "Set secret" }).click();
    await panel.locator('[data-secret="API_KEY"]').waitFor();

    await panel.locator('[data-secret="HF_TOKEN"]').getByRole("button", { name: "Remove" }).click();
    await expect.poll(() => panel.locator('[data-secret="HF_TOKEN"]').count()).toBe(0);
    expect(JSON.parse(String((await row("cfg-ui"))!.secret_names))).toEqual(["API_KEY"]);

    await panel.getByRole("button", { name: "Remove credential" }).click();
    await panel.getByText("None: the repository is cloned without credentials.").waitFor();
    expect((await row("cfg-ui"))!.git_credential_sealed).toBeNull();
    expect(await page.content()).not.toContain("sk-canary-9d1e");
  });

  it("saves an edited environment", async () => {
    const panel = page.getByRole("region", { name: "Configuration" });
    await panel.getByLabel("Value 1", { exact: true }).fill("--api --xformers");
    await panel.getByRole("button", { name: "Save environment" }).click();
    await expect.poll(async () => JSON.parse(String((await row("cfg-ui"))!.env)).COMMANDLINE_ARGS).toBe("--api --xformers");
  });
});

describe("Registries settings page", () => {
  it("saves a login (password write-only), refuses a bad host naming it, and removes a login", async () => {
    await page.goto(`${c.url}/settings/registries`);
    await page.getByLabel("Registry host").fill("https://registry.example.com");
    await page.getByLabel("User", { exact: true }).fill("puller");
    await page.getByLabel("Password or token").fill("reg-pw-canary-31");
    await page.getByRole("button", { name: "Save login" }).click();
    await expect.poll(async () => (await page.locator(".field-error").allTextContents()).join()).toMatch(/Registry host must be a registry host/);

    await page.getByLabel("Registry host").fill("registry.example.com:5000");
    await page.getByLabel("Password or token").fill("reg-pw-canary-31");
    await page.getByRole("button", { name: "Save login" }).click();
    const row = page.locator('tr[data-registry="registry.example.com:5000"]');
    await row.waitFor();
    expect(await row.textContent()).toContain("puller");
    expect(await page.content()).not.toContain("reg-pw-canary-31");
    expect((await dbBytes()).includes("reg-pw-canary-31")).toBe(false);

    page.once("dialog", (d) => void d.accept());
    await row.getByRole("button", { name: "Remove the login for registry.example.com:5000" }).click();
    await expect.poll(() => page.locator('tr[data-registry="registry.example.com:5000"]').count()).toBe(0);
  });
});
