// Where the suite finds the stack and the browser: the E2E compose stack's seed ports by default
// (docker-compose.e2e.yml: frontend 4202, its config.json naming the backend on 3201).
export const BASE_URL = (process.env.E2E_BASE_URL ?? "http://127.0.0.1:4202").replace(/\/+$/, "");
/** The API the page calls; by default the one the page's config.json names (the same origin if none). */
export const API_URL_OVERRIDE = process.env.E2E_API_URL?.replace(/\/+$/, "");
/** Debian's Chromium: Playwright drives the machine's browser and never downloads its own. */
export const CHROMIUM = process.env.E2E_CHROMIUM ?? "/usr/bin/chromium";

/** The API's base URL: E2E_API_URL, else what the page's config.json names, else the page's origin. */
export async function discoverApi(): Promise<string> {
  if (API_URL_OVERRIDE !== undefined) return API_URL_OVERRIDE;
  // The page's own runtime config names the API (the frontend container writes it from API_BASE).
  const response = await fetch(`${BASE_URL}/config.json`, { cache: "no-store", signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`${BASE_URL}/config.json answered ${response.status}: is the stack up?`);
  const config = (await response.json()) as { apiBase?: unknown };
  const base = typeof config.apiBase === "string" ? config.apiBase.trim().replace(/\/+$/, "") : "";
  return base === "" ? BASE_URL : base;
}
