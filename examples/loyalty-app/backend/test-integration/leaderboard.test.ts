// The Redis leaderboard, fed from the Postgres store.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RedisLeaderboard } from "../src/leaderboard.js";
import { deleteKeys, migratedStack, REDIS_URL, type Stack } from "./support.js";

let stack: Stack;

before(async () => {
  stack = await migratedStack("board");
});
after(async () => {
  await stack?.close();
});

describe("RedisLeaderboard on Redis", () => {
  it("builds itself from the database's totals on first read, then ranks by points earned", async () => {
    const ann = await stack.store.createUser({ email: "ann@example.com", name: "Ann" });
    await stack.store.earn(ann.id, 900, "order");
    const totals = () => stack.store.earnedTotals();
    assert.deepEqual(await stack.leaderboard.top(10, totals), [
      { userId: ann.id, points: 900 },
      { userId: 1, points: 250 },
    ]);
    await stack.store.earn(1, 1000, "big order");
    await stack.leaderboard.record(1, await stack.store.earned(1));
    assert.deepEqual(await stack.leaderboard.top(1, totals), [{ userId: 1, points: 1250 }]);
  });

  it("never lowers a member's total: a late write of an older total is ignored (ZADD GT)", async () => {
    await stack.leaderboard.record(4242, 500);
    await stack.leaderboard.record(4242, 300);
    const score = await stack.leaderboard.redis.zscore("leaderboard", "4242");
    assert.equal(score, "500");
  });

  it("rebuilds from the database when Redis lost its keys (a restart without persistence)", async () => {
    await deleteKeys(stack.prefix);
    let reads = 0;
    const top = await stack.leaderboard.top(3, async () => {
      reads += 1;
      return stack.store.earnedTotals();
    });
    assert.equal(reads, 1);
    assert.equal(top[0]?.userId, 1);
    assert.equal(top[0]?.points, 1250);
    await stack.leaderboard.top(3, async () => assert.fail("built already: no second rebuild"));
  });

  it("keeps to its key prefix, so boards of other apps or runs on one Redis stay apart", async () => {
    const other = new RedisLeaderboard({ url: REDIS_URL, keyPrefix: `${stack.prefix}other:` });
    await other.connect();
    try {
      assert.deepEqual(await other.top(5, async () => []), []);
      assert.ok((await stack.leaderboard.top(5, async () => [])).length > 0);
    } finally {
      await deleteKeys(`${stack.prefix}other:`);
      await other.close();
    }
  });

  it("reports an unreachable Redis in its check, naming the error", async () => {
    const dead = new RedisLeaderboard({ url: "redis://127.0.0.1:1" });
    try {
      await assert.rejects(() => dead.connect());
      await assert.rejects(() => dead.check(), /not connected \(.*last error: connect ECONNREFUSED 127\.0\.0\.1:1/);
    } finally {
      dead.redis.disconnect();
    }
  });
});
