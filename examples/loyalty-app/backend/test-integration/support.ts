// Integration tests run against a real Postgres and a real Redis, given by the environment:
//
//   DATABASE_URL=postgresql://loyalty:loyalty@127.0.0.1:5435/loyalty REDIS_URL=redis://127.0.0.1:6380 \
//     npm run test:integration          # e.g. against `docker compose -f docker-compose.test.yml up -d --wait`
//
// Each test gets a database of its own (created on that server, dropped afterwards) and a Redis key
// prefix of its own, so test files run in parallel, and beside other runs, on one server.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Redis } from "ioredis";
import { migrationsDir } from "../src/config.js";
import { RedisLeaderboard } from "../src/leaderboard.js";
import { loadMigrations, migrate } from "../src/migrator.js";
import { PrismaStore } from "../src/prisma-store.js";
import { newestMigration } from "../src/services.js";

function required(name: string): string {
  const value = process.env[name]?.trim();
  if (!value) {
    throw new Error(
      `${name} is not set: integration tests need a real Postgres and Redis (DATABASE_URL, REDIS_URL); ` +
        "start them with `docker compose -f docker-compose.test.yml up -d --wait`",
    );
  }
  return value;
}

export const DATABASE_URL = required("DATABASE_URL");
export const REDIS_URL = required("REDIS_URL");

const unique = (label: string): string => `${label}_${process.pid}_${randomBytes(4).toString("hex")}`.toLowerCase();

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** An empty database of its own on the DATABASE_URL server. */
export async function freshDatabase(label: string): Promise<TestDatabase> {
  const name = unique(`loyalty_it_${label}`).replace(/[^a-z0-9_]/g, "_");
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      const again = new pg.Client({ connectionString: DATABASE_URL });
      await again.connect();
      try {
        await again.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await again.end();
      }
    },
  };
}

/** Run `fn` with an empty database of its own, dropped afterwards whatever happens. */
export async function onFreshDatabase<T>(label: string, fn: (db: TestDatabase) => Promise<T>): Promise<T> {
  const db = await freshDatabase(label);
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

/** Run `fn` on one connection to `url`. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function migrateCommitted(url: string): Promise<string[]> {
  return withClient(url, async (client) => (await migrate(client, loadMigrations(migrationsDir({})))).applied);
}

export interface Stack {
  db: TestDatabase;
  store: PrismaStore;
  leaderboard: RedisLeaderboard;
  prefix: string;
  close(): Promise<void>;
}

/** A migrated database with the Postgres store on it, and a Redis leaderboard under a key prefix of its own. */
export async function migratedStack(label: string): Promise<Stack> {
  const db = await freshDatabase(label);
  await migrateCommitted(db.url);
  const store = new PrismaStore({ databaseUrl: db.url, poolSize: 5, requiredMigration: newestMigration(migrationsDir({})) });
  const prefix = `${unique(`it:${label}`)}:`;
  const leaderboard = new RedisLeaderboard({ url: REDIS_URL, keyPrefix: prefix });
  await leaderboard.connect();
  return {
    db,
    store,
    leaderboard,
    prefix,
    close: async () => {
      await deleteKeys(prefix);
      await Promise.allSettled([store.close(), leaderboard.close()]);
      await db.drop();
    },
  };
}

/** Remove every Redis key under `prefix`. */
export async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  await redis.connect();
  try {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
