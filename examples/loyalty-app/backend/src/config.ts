// Runtime configuration, read once from the environment.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Config {
  host: string;
  port: number;
  version: string;
  commit: string;
  /** How long SIGTERM waits for in-flight requests before closing them (ms). */
  shutdownTimeoutMs: number;
  /** Report 503 from /api/health (lets deploy tests ship a "bad" release with a good image). */
  forceUnhealthy: boolean;
  /** Exit with status 70 this long after listening (0: never): a release that crashes after its switch. */
  crashAfterMs: number;
  /** CORS_ORIGINS: comma-separated browser origins allowed to call the API ("*" for any). */
  corsOrigins: string[];
  logRequests: boolean;
  /** DATA_STORE: "postgres" (the default: DATABASE_URL + REDIS_URL) or "memory" (no services; demo data). */
  dataStore: "postgres" | "memory";
  /** DATABASE_URL: postgres://user:password@host:port/db (required for the postgres store). */
  databaseUrl: string;
  /** REDIS_URL: redis://host:port (required for the postgres store: the leaderboard lives there). */
  redisUrl: string;
  /** REDIS_KEY_PREFIX: prepended to every Redis key (default "loyalty:"). */
  redisKeyPrefix: string;
  /** DB_POOL_SIZE: connections in the Postgres pool. */
  dbPoolSize: number;
}

const PACKAGE_NAME = "loyalty-app-backend";

/** This app's root: the nearest folder above `start` whose package.json is this package's. */
export function appRoot(start: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  let dir = start;
  for (;;) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, "utf8")) as { name?: string };
        if (pkg.name === PACKAGE_NAME) return dir;
      } catch {
        // not ours or unreadable: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The version in this app's package.json, found by walking up from the compiled module. */
export function packageVersion(start: string = dirname(fileURLToPath(import.meta.url))): string {
  const root = appRoot(start);
  if (root === undefined) return "0.0.0";
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: unknown };
  return typeof pkg.version === "string" ? pkg.version : "0.0.0";
}

/** The committed migrations (prisma/migrations in the app root; MIGRATIONS_DIR overrides). */
export function migrationsDir(env: NodeJS.ProcessEnv = process.env): string {
  const given = env.MIGRATIONS_DIR?.trim();
  if (given) return given;
  return join(appRoot() ?? process.cwd(), "prisma", "migrations");
}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}, got '${raw}'`);
  }
  return value;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  return ["1", "true", "yes", "on"].includes((env[name] ?? "").trim().toLowerCase());
}

function urlFrom(env: NodeJS.ProcessEnv, name: string, schemes: readonly string[], required: boolean): string {
  const raw = env[name]?.trim() ?? "";
  if (raw === "") {
    if (required) throw new Error(`${name} is not set: give a ${schemes[0]}//... URL (or DATA_STORE=memory)`);
    return "";
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${name} is not a URL (expected ${schemes.join(" or ")}//host:port/...)`);
  }
  if (!schemes.includes(url.protocol)) {
    throw new Error(`${name} must start with ${schemes.join(" or ")}//, not ${url.protocol}//`);
  }
  return raw;
}

function dataStoreFrom(env: NodeJS.ProcessEnv): Config["dataStore"] {
  const raw = env.DATA_STORE?.trim().toLowerCase() || "postgres";
  if (raw !== "postgres" && raw !== "memory") throw new Error(`DATA_STORE must be postgres or memory, got '${env.DATA_STORE}'`);
  return raw;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataStore = dataStoreFrom(env);
  const needed = dataStore === "postgres";
  return {
    host: env.HOST?.trim() || "0.0.0.0",
    port: intFrom(env, "PORT", 3000, 0, 65535),
    version: env.APP_VERSION?.trim() || packageVersion(),
    commit: env.GIT_SHA?.trim() || "unknown",
    shutdownTimeoutMs: intFrom(env, "SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
    forceUnhealthy: flag(env, "FORCE_UNHEALTHY"),
    crashAfterMs: intFrom(env, "CRASH_AFTER_MS", 0, 0, 86_400_000),
    corsOrigins: (env.CORS_ORIGINS ?? "")
      .split(",")
      .map((o) => o.trim().replace(/\/+$/, ""))
      .filter((o) => o !== ""),
    logRequests: !flag(env, "QUIET"),
    dataStore,
    databaseUrl: urlFrom(env, "DATABASE_URL", ["postgres:", "postgresql:"], needed),
    redisUrl: urlFrom(env, "REDIS_URL", ["redis:", "rediss:"], needed),
    redisKeyPrefix: env.REDIS_KEY_PREFIX ?? "loyalty:",
    dbPoolSize: intFrom(env, "DB_POOL_SIZE", 10, 1, 100),
  };
}
