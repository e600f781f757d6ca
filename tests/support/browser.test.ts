// Proves launchBrowser(): headless Chromium loads a page from a local node http server and reads its title.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { launchBrowser } from "./browser";

describe("launchBrowser", () => {
  let server: Server;
  let browser: Browser | undefined;
  let url: string;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end("<!doctype html><html><head><title>DCC browser check</title></head><body><h1 id=hello>hello</h1></body></html>");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("opens a local page and reads its title", async () => {
    browser = await launchBrowser();
    const page = await browser.newPage();
    await page.goto(url);
    expect(await page.title()).toBe("DCC browser check");
    expect(await page.textContent("#hello")).toBe("hello");
  }, 30_000);
});
