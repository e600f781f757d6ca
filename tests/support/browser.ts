// Headless Chromium for browser tests: launchBrowser() starts Debian's /usr/bin/chromium through playwright-core, which never downloads a browser of its own.
import { chromium, type Browser, type LaunchOptions, type Page } from "playwright-core";
import { TEST_ADMIN_PASSWORD, TEST_ADMIN_USER } from "./console";

export const CHROMIUM_PATH = "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launch headless Chromium; extra `args` are appended to the defaults, other options override. */
export function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  const { args = [], ...rest } = options;
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    ...rest,
    args: [...CHROMIUM_ARGS, ...args],
  });
}

/**
 * Signs a page in through the console's own sign-in form (as the test console's first admin by
 * default) and waits for the dashboard. Cookies stay in the page's browser context.
 */
export async function signIn(
  page: Page,
  console: { url: string },
  username = TEST_ADMIN_USER,
  password = TEST_ADMIN_PASSWORD,
): Promise<void> {
  await page.goto(`${console.url}/login`);
  await waitForHydration(page);
  await page.getByLabel("User name").fill(username);
  await page.getByLabel("Password").fill(password);
  await Promise.all([page.waitForURL((u) => u.pathname !== "/login"), page.getByRole("button", { name: "Sign in" }).click()]);
  // The URL changes before the signed-in layout has rendered: wait for its main navigation.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Apps" }).waitFor();
}

/**
 * Waits until Remix has hydrated the page: typing into a form before that can be undone when
 * React takes the inputs over under load.
 */
export async function waitForHydration(page: Page): Promise<void> {
  await page.waitForFunction(() => "__remixRouter" in window);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}
