// The store and leaderboard a configuration asks for: Postgres + Redis, or both in memory.
import { existsSync } from "node:fs";
import type { AppServices } from "./app.js";
import { migrationsDir, type Config } from "./config.js";
import { MemoryLeaderboard, RedisLeaderboard } from "./leaderboard.js";
import { loadMigrations } from "./migrator.js";
import { PrismaStore } from "./prisma-store.js";
import { seededStore } from "./store.js";

export interface Services extends AppServices {
  /** Where the data lives, for the start-up log line (no credentials). */
  describe: string;
  close(): Promise<void>;
}

/** The newest migration this release ships (health fails until the database has it), if any. */
export function newestMigration(dir: string = migrationsDir()): string | undefined {
  if (!existsSync(dir)) return undefined;
  return loadMigrations(dir).at(-1)?.name;
}

function where(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || "default port"}${u.pathname === "/" ? "" : u.pathname}`;
}

export async function createServices(config: Config, log: (line: string) => void): Promise<Services> {
  if (config.dataStore === "memory") {
    const store = await seededStore();
    const leaderboard = new MemoryLeaderboard();
    return { store, leaderboard, describe: "in memory (DATA_STORE=memory)", close: async () => {} };
  }
  const store = new PrismaStore({
    databaseUrl: config.databaseUrl,
    poolSize: config.dbPoolSize,
    requiredMigration: newestMigration(),
    onError: (err) => log(`postgres: ${err.message}`),
  });
  let lastRedisError = "";
  const leaderboard = new RedisLeaderboard({
    url: config.redisUrl,
    keyPrefix: config.redisKeyPrefix,
    onError: (err) => {
      // ioredis repeats the same error on every reconnect attempt: log each distinct one once.
      if (err.message !== lastRedisError) log(`redis: ${err.message}`);
      lastRedisError = err.message;
    },
  });
  leaderboard.redis.on("ready", () => {
    lastRedisError = "";
  });
  // Not reachable yet is not fatal: the client reconnects, and /api/health says 503 meanwhile.
  await leaderboard.connect().catch(() => {});
  return {
    store,
    leaderboard,
    describe: `postgres ${where(config.databaseUrl)}, redis ${where(config.redisUrl)}`,
    close: async () => {
      await Promise.allSettled([store.close(), leaderboard.close()]);
    },
  };
}
