// Before any test: wait (bounded) until the stack serves, as a job that ran `docker compose up -d`
// without --wait needs, and make the backend's first requests (its database pool, Prisma's query
// compiler, the leaderboard's rebuild from a fresh Redis) before the timed tests make them.
import { BASE_URL, discoverApi } from "./env.js";

const WAIT_MS = Number(process.env.E2E_STACK_TIMEOUT_MS ?? "90000");

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000), cache: "no-store" });
    return response.ok;
  } catch {
    return false;
  }
}

export default async function globalSetup(): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  let api: string | undefined;
  while (Date.now() < deadline) {
    if (await answers(`${BASE_URL}/config.json`)) {
      api ??= await discoverApi().catch(() => undefined);
      if (api !== undefined && (await answers(`${api}/api/health`))) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  if (api === undefined || !(await answers(`${api}/api/health`))) {
    throw new Error(`the stack did not become healthy within ${WAIT_MS / 1000}s: page ${BASE_URL}, API ${api ?? "(unknown)"}`);
  }
  for (const path of ["/api/rewards", "/api/leaderboard?limit=5", "/api/users/1", "/api/users/1/points"]) {
    await answers(`${api}${path}`);
  }
}
