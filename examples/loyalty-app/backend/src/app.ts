// The HTTP API on plain node:http. Every response is JSON.
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { HttpError, NotFoundError, ValidationError } from "./errors.js";
import type { Leaderboard } from "./leaderboard.js";
import type { LoyaltyStore } from "./store.js";

export interface AppServices {
  store: LoyaltyStore;
  leaderboard: Leaderboard;
}

export interface AppInfo {
  version: string;
  commit: string;
  forceUnhealthy?: boolean;
  /** What /api/health checks (default: the store and the leaderboard): name -> resolves when fine. */
  checks?: Record<string, () => Promise<void>>;
  /** Origins allowed to call the API from a browser (CORS); "*" allows any. Empty: same origin only. */
  corsOrigins?: readonly string[];
  log?: (line: string) => void;
}

type Params = Record<string, string>;
type Handler = (ctx: { req: IncomingMessage; params: Params; url: URL }) => Promise<[number, unknown]> | [number, unknown];

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
}

const MAX_BODY_BYTES = 64 * 1024;
const MAX_SLOW_MS = 10_000;
const MAX_LEADERS = 100;

function route(method: string, path: string, handler: Handler): Route {
  const keys: string[] = [];
  const source = path.replace(/:([a-zA-Z]+)/g, (_m, key: string) => {
    keys.push(key);
    return "([^/]+)";
  });
  return { method, pattern: new RegExp(`^${source}/?$`), keys, handler };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
  });
  res.end(payload);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers["content-type"] ?? "";
  if (!type.toLowerCase().startsWith("application/json")) {
    throw new HttpError(415, "send a JSON body with content-type: application/json");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(buf);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new ValidationError("body is not valid JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ValidationError("body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

function idParam(params: Params, name: string): number {
  const raw = params[name] ?? "";
  const id = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(id) || id <= 0) throw new NotFoundError(`no ${name} '${raw}'`);
  return id;
}

function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== "string") throw new ValidationError(`'${name}' must be a string`);
  return value;
}

function numberField(body: Record<string, unknown>, name: string): number {
  const value = body[name];
  if (typeof value !== "number") throw new ValidationError(`'${name}' must be a number`);
  return value;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Every check at once; "ok" or what went wrong, per check. */
async function runChecks(checks: Record<string, () => Promise<void>>): Promise<[boolean, Record<string, string>]> {
  const names = Object.keys(checks);
  const results = await Promise.allSettled(names.map((name) => checks[name]!()));
  const report: Record<string, string> = {};
  let ok = true;
  results.forEach((result, i) => {
    ok &&= result.status === "fulfilled";
    report[names[i]!] = result.status === "fulfilled" ? "ok" : errorText(result.reason);
  });
  return [ok, report];
}

export function createApp({ store, leaderboard }: AppServices, info: AppInfo): RequestListener {
  const checks = info.checks ?? { database: () => store.check(), redis: () => leaderboard.check() };
  const routes: Route[] = [
    route("GET", "/api/health", async () => {
      const [ok, report] = await runChecks(checks);
      const healthy = ok && !info.forceUnhealthy;
      return [
        healthy ? 200 : 503,
        { status: healthy ? "ok" : "unhealthy", version: info.version, commit: info.commit, checks: report },
      ];
    }),
    route("GET", "/api/rewards", async () => [200, { rewards: await store.listRewards() }]),
    route("POST", "/api/rewards", async ({ req }) => {
      const body = await readJson(req);
      const reward = await store.createReward({
        name: stringField(body, "name"),
        cost: numberField(body, "cost"),
        stock: numberField(body, "stock"),
      });
      return [201, { reward }];
    }),
    route("GET", "/api/users", async () => [200, { users: await store.listUsers() }]),
    route("POST", "/api/users", async ({ req }) => {
      const body = await readJson(req);
      const user = await store.createUser({ email: stringField(body, "email"), name: stringField(body, "name") });
      return [201, { user, balance: 0 }];
    }),
    route("GET", "/api/users/:userId", async ({ params }) => {
      const id = idParam(params, "userId");
      const user = await store.getUser(id);
      return [200, { user, balance: await store.balance(id) }];
    }),
    route("GET", "/api/users/:userId/points", async ({ params }) => {
      const id = idParam(params, "userId");
      const entries = await store.entries(id);
      return [200, { balance: entries.reduce((sum, e) => sum + e.delta, 0), entries }];
    }),
    route("POST", "/api/users/:userId/points", async ({ req, params }) => {
      const id = idParam(params, "userId");
      const body = await readJson(req);
      const entry = await store.earn(id, numberField(body, "points"), stringField(body, "reason"));
      // The earn is committed: a leaderboard failure must not turn it into an error the client retries.
      // The board takes absolute totals, so the member's next earn (or a rebuild) repairs it.
      try {
        await leaderboard.record(id, await store.earned(id));
      } catch (err) {
        info.log?.(`leaderboard not updated for user ${id}: ${errorText(err)}`);
      }
      return [201, { entry, balance: await store.balance(id) }];
    }),
    route("GET", "/api/users/:userId/redemptions", async ({ params }) => {
      const id = idParam(params, "userId");
      return [200, { redemptions: await store.redemptionsOf(id) }];
    }),
    route("POST", "/api/users/:userId/redemptions", async ({ req, params }) => {
      const id = idParam(params, "userId");
      const body = await readJson(req);
      const redemption = await store.redeem(id, numberField(body, "rewardId"));
      return [201, { redemption, balance: await store.balance(id) }];
    }),
    // Members by points earned in all (Redis), highest first: ?limit=1..100 (default 10).
    route("GET", "/api/leaderboard", async ({ url }) => {
      const raw = url.searchParams.get("limit") ?? "10";
      const limit = Number(raw);
      if (!/^\d+$/.test(raw) || limit < 1 || limit > MAX_LEADERS) {
        throw new ValidationError(`limit must be an integer between 1 and ${MAX_LEADERS}`);
      }
      const top = await leaderboard.top(limit, () => store.earnedTotals());
      const names = new Map((await store.usersById(top.map((t) => t.userId))).map((u) => [u.id, u.name]));
      const leaders = top
        .filter((t) => names.has(t.userId))
        .map((t, i) => ({ rank: i + 1, userId: t.userId, name: names.get(t.userId), points: t.points }));
      return [200, { leaders }];
    }),
    // A request that takes `ms` milliseconds (max 10 s): lets deploy tests check draining on shutdown.
    route("GET", "/api/slow", async ({ url }) => {
      const ms = Math.min(Math.max(Number(url.searchParams.get("ms") ?? "1000") || 0, 0), MAX_SLOW_MS);
      await new Promise((resolve) => setTimeout(resolve, ms));
      return [200, { waitedMs: ms }];
    }),
  ];

  const cors = new Set(info.corsOrigins ?? []);

  return (req, res) => {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";

    const origin = req.headers.origin;
    if (origin !== undefined && (cors.has("*") || cors.has(origin))) {
      res.setHeader("access-control-allow-origin", cors.has("*") ? "*" : origin);
      res.setHeader("vary", "Origin");
      if (method === "OPTIONS") {
        res.writeHead(204, {
          "access-control-allow-methods": "GET, POST",
          "access-control-allow-headers": "content-type",
          "access-control-max-age": "600",
        });
        res.end();
        return;
      }
    }

    const run = async (): Promise<[number, unknown]> => {
      const matching = routes.filter((r) => r.pattern.test(url.pathname));
      if (matching.length === 0) throw new NotFoundError(`no route for ${url.pathname}`);
      const found = matching.find((r) => r.method === method || (method === "HEAD" && r.method === "GET"));
      if (found === undefined) {
        res.setHeader("allow", [...new Set(matching.map((r) => r.method))].join(", "));
        throw new HttpError(405, `${method} is not allowed on ${url.pathname}`);
      }
      const match = found.pattern.exec(url.pathname) ?? [];
      const params: Params = {};
      found.keys.forEach((key, i) => {
        params[key] = decodeURIComponent(match[i + 1] ?? "");
      });
      return found.handler({ req, params, url });
    };

    run()
      .catch((err: unknown): [number, unknown] => {
        if (err instanceof HttpError) return [err.status, { error: err.message }];
        info.log?.(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        return [500, { error: "internal error" }];
      })
      .then(([status, body]) => {
        sendJson(res, status, body);
        if (info.log !== undefined) {
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          info.log(`${method} ${url.pathname} ${status} ${ms.toFixed(1)}ms`);
        }
      });
  };
}
