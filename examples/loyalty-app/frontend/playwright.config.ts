// The E2E suite (e2e/*.spec.ts): real user flows in Debian's Chromium, headless, against a running stack
// (docker-compose.e2e.yml, or any deployment the page and API answer on).
//
//   docker compose -f ../docker-compose.e2e.yml up -d --wait     # from this directory
//   npm run test:e2e                                             # E2E_BASE_URL=http://127.0.0.1:4202
//
// The global setup waits (up to E2E_STACK_TIMEOUT_MS, 90 s) for the page and a healthy API, so `up -d`
// without --wait is enough. Install with PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1: no browser is downloaded,
// `playwright install` is never run; E2E_CHROMIUM names another Chromium build. E2E_WORKERS sets the parallelism (default 2: the
// CI runner has 2 cores and also runs the stack). Every test makes its own members and rewards, so
// tests run in parallel on one database; E2E_JSON_REPORT is where the per-test timings are written.
import { defineConfig } from "@playwright/test";
import { BASE_URL, CHROMIUM } from "./e2e/env.js";

const workers = Number(process.env.E2E_WORKERS ?? "2");

export default defineConfig({
  testDir: "e2e",
  globalSetup: "./e2e/global-setup.ts",
  outputDir: "e2e-results/artifacts",
  fullyParallel: true,
  forbidOnly: Boolean(process.env.CI),
  retries: 0,
  workers: Number.isInteger(workers) && workers > 0 ? workers : 2,
  timeout: 45_000,
  expect: { timeout: 10_000 },
  reporter: [["list"], ["json", { outputFile: process.env.E2E_JSON_REPORT ?? "e2e-results/results.json" }]],
  use: {
    baseURL: BASE_URL,
    browserName: "chromium",
    headless: true,
    launchOptions: { executablePath: CHROMIUM },
    locale: "en-US",
    timezoneId: "UTC",
    viewport: { width: 1280, height: 800 },
    actionTimeout: 10_000,
    navigationTimeout: 15_000,
    // E2E_TRACE=retain-on-failure keeps a trace of each failed test (it slows every test down).
    trace: process.env.E2E_TRACE === "retain-on-failure" || process.env.E2E_TRACE === "on" ? process.env.E2E_TRACE : "off",
    screenshot: "only-on-failure",
  },
});
