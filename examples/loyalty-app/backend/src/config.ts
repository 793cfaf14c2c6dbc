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
}

const PACKAGE_NAME = "loyalty-app-backend";

/** The version in this app's package.json, found by walking up from the compiled module. */
export function packageVersion(start: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = start;
  for (;;) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, "utf8")) as { name?: string; version?: string };
        if (pkg.name === PACKAGE_NAME && typeof pkg.version === "string") return pkg.version;
      } catch {
        // not ours or unreadable: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return "0.0.0";
    dir = parent;
  }
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

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
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
  };
}
