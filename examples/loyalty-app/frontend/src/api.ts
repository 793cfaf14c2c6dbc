// A small typed client for the backend API. The base URL is empty by default: the page and the API
// share an origin (nginx routes /api to the backend; `npm run dev` proxies it, see vite.config.ts).
import type { Health, Leader, LedgerEntry, Reward, User } from "./types.js";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/**
 * The API base URL: `apiBase` from ./config.json next to the page (the frontend container writes it
 * from its API_BASE variable at start), else `fallback` (VITE_API_BASE at build time, else same origin).
 */
export async function apiBase(fetchImpl: Fetch, fallback: string, configUrl = "./config.json"): Promise<string> {
  try {
    const res = await fetchImpl(configUrl, { cache: "no-store" });
    if (!res.ok) return fallback;
    const config: unknown = await res.json();
    if (config !== null && typeof config === "object" && "apiBase" in config && typeof config.apiBase === "string") {
      return config.apiBase.trim().replace(/\/+$/, "") || fallback;
    }
  } catch {
    // no config.json (vite dev server without it, a proxy error page): use the fallback
  }
  return fallback;
}

export class Api {
  constructor(
    private readonly base: string = "",
    private readonly fetchImpl: Fetch = (input, init) => fetch(input, init),
  ) {}

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetchImpl(this.base + path, {
      method,
      headers: body === undefined ? { accept: "application/json" } : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data: unknown = null;
    try {
      data = await res.json();
    } catch {
      // not JSON (a proxy error page, say): reported below with the status
    }
    if (!res.ok) {
      const message =
        data !== null && typeof data === "object" && "error" in data ? String(data.error) : `HTTP ${res.status}`;
      throw new ApiError(res.status, message);
    }
    return data as T;
  }

  health(): Promise<Health> {
    return this.request("GET", "/api/health");
  }

  async rewards(): Promise<Reward[]> {
    return (await this.request<{ rewards: Reward[] }>("GET", "/api/rewards")).rewards;
  }

  signUp(email: string, name: string): Promise<{ user: User; balance: number }> {
    return this.request("POST", "/api/users", { email, name });
  }

  async leaderboard(limit = 5): Promise<Leader[]> {
    return (await this.request<{ leaders: Leader[] }>("GET", `/api/leaderboard?limit=${limit}`)).leaders;
  }

  member(userId: number): Promise<{ user: User; balance: number }> {
    return this.request("GET", `/api/users/${userId}`);
  }

  ledger(userId: number): Promise<{ balance: number; entries: LedgerEntry[] }> {
    return this.request("GET", `/api/users/${userId}/points`);
  }

  earn(userId: number, points: number, reason: string): Promise<{ entry: LedgerEntry; balance: number }> {
    return this.request("POST", `/api/users/${userId}/points`, { points, reason });
  }

  redeem(userId: number, rewardId: number): Promise<{ balance: number }> {
    return this.request("POST", `/api/users/${userId}/redemptions`, { rewardId });
  }
}
