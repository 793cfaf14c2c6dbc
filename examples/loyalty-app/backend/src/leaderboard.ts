// The leaderboard: members ranked by the points they earned in all, kept in a Redis sorted set.
//
// Postgres holds the truth (the ledger); the sorted set is derived from it and always repairable:
// - every earn writes the member's new lifetime total with `ZADD ... GT`: totals only grow, so a late
//   write of an older total never lowers a newer one, whatever order concurrent requests finish in;
// - a marker key says the set holds every member. Without it (a fresh or restarted Redis, a flushed
//   one) the first read rebuilds the set from the database's totals, again with GT, then sets it.
import { Redis } from "ioredis";
import type { EarnedTotal } from "./store.js";

export interface Leader {
  userId: number;
  points: number;
}

export interface Leaderboard {
  /** Record a member's lifetime earned total; a lower value never replaces a higher one. */
  record(userId: number, earned: number): Promise<void>;
  /** The top `limit` members, highest first; `totals` gives every member's total when the board is not built. */
  top(limit: number, totals: () => Promise<EarnedTotal[]>): Promise<Leader[]>;
  /** Resolves when the board's service answers. */
  check(): Promise<void>;
  close(): Promise<void>;
}

export class MemoryLeaderboard implements Leaderboard {
  private readonly scores = new Map<number, number>();
  private built = false;

  async record(userId: number, earned: number): Promise<void> {
    if (earned > (this.scores.get(userId) ?? -Infinity)) this.scores.set(userId, earned);
  }

  async top(limit: number, totals: () => Promise<EarnedTotal[]>): Promise<Leader[]> {
    if (!this.built) {
      for (const { userId, earned } of await totals()) await this.record(userId, earned);
      this.built = true;
    }
    return [...this.scores]
      .map(([userId, points]) => ({ userId, points }))
      .sort((a, b) => b.points - a.points || a.userId - b.userId)
      .slice(0, limit);
  }

  /** Forget that the board is complete (what a Redis restart does). */
  reset(): void {
    this.scores.clear();
    this.built = false;
  }

  async check(): Promise<void> {}

  async close(): Promise<void> {}
}

export interface RedisLeaderboardOptions {
  url: string;
  /** Prepended to every key (REDIS_KEY_PREFIX): lets apps or test runs share one Redis. */
  keyPrefix?: string;
  onError?: (err: Error) => void;
}

const BATCH = 500;

export class RedisLeaderboard implements Leaderboard {
  readonly redis: Redis;
  private readonly key = "leaderboard";
  private readonly readyKey = "leaderboard:complete";
  private lastError = "";

  constructor(options: RedisLeaderboardOptions) {
    this.redis = new Redis(options.url, {
      keyPrefix: options.keyPrefix ?? "",
      lazyConnect: true,
      // Fail fast while disconnected (the request gets a 503/500 now, not a hang), reconnect in the background.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: 2_000,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
    });
    this.redis.on("error", (err: Error) => {
      this.lastError = err.message;
      options.onError?.(err);
    });
    this.redis.on("ready", () => {
      this.lastError = "";
    });
  }

  /** Connects now; on failure the client keeps retrying in the background (health reports it). */
  async connect(): Promise<void> {
    await this.redis.connect();
  }

  async record(userId: number, earned: number): Promise<void> {
    await this.redis.zadd(this.key, "GT", earned, String(userId));
  }

  async top(limit: number, totals: () => Promise<EarnedTotal[]>): Promise<Leader[]> {
    if ((await this.redis.exists(this.readyKey)) === 0) await this.rebuild(await totals());
    const flat = await this.redis.zrevrange(this.key, 0, limit - 1, "WITHSCORES");
    const leaders: Leader[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      leaders.push({ userId: Number(flat[i]), points: Number(flat[i + 1]) });
    }
    return leaders;
  }

  async rebuild(totals: readonly EarnedTotal[]): Promise<void> {
    for (let i = 0; i < totals.length; i += BATCH) {
      const args = totals.slice(i, i + BATCH).flatMap((t) => [t.earned, String(t.userId)]);
      await this.redis.zadd(this.key, "GT", ...args);
    }
    await this.redis.set(this.readyKey, new Date().toISOString());
  }

  async check(): Promise<void> {
    if (this.redis.status !== "ready") {
      throw new Error(`not connected (${this.redis.status}${this.lastError ? `; last error: ${this.lastError}` : ""})`);
    }
    const answer = await this.redis.ping();
    if (answer !== "PONG") throw new Error(`redis answered ${answer} to PING`);
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
