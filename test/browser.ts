// Shared by the browser tests: Debian's Chromium (never a downloaded build) driven by puppeteer-core.
// Without it a test says so loudly and skips; HVP_REQUIRE_BROWSER=1 (CI) makes that a failure.

import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** WebGPU in headless Chromium on SwiftShader, its CPU Vulkan implementation: no GPU needed. */
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

/** Whether Chromium is installed; if not, warn (or throw under HVP_REQUIRE_BROWSER=1) naming `test`. */
export function haveChromium(test: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  const why = `${test}: no Chromium at ${CHROMIUM}; install it with \`node scripts/setup.mjs --browser\` (Debian's chromium) or set CHROMIUM_PATH`;
  if (process.env.HVP_REQUIRE_BROWSER === '1') throw new Error(why);
  console.warn(`SKIPPED ${why}`);
  return false;
}

/**
 * Headless Chromium, and its pages (openPage), with no time limit of their own on protocol calls or
 * waits: SwiftShader runs the page's shaders on the CPU, and on a loaded machine one evaluate can take
 * minutes; the test's own limit (vitest.config.ts) catches a hang.
 */
export function launchChromium(args: string[] = []): Promise<Browser> {
  return puppeteer.launch({ executablePath: CHROMIUM, headless: true, protocolTimeout: 0, args: ['--headless=new', '--no-sandbox', ...args] });
}

export async function openPage(browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(0);
  return page;
}

/** Console errors, page errors and failed requests of `page`, collected as they happen. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  return errors;
}
