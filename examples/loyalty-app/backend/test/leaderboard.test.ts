import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryLeaderboard } from "../src/leaderboard.js";

describe("MemoryLeaderboard", () => {
  it("builds itself from the store's totals on the first read, then keeps them up to date", async () => {
    const board = new MemoryLeaderboard();
    let reads = 0;
    const totals = async () => {
      reads += 1;
      return [
        { userId: 1, earned: 250 },
        { userId: 2, earned: 900 },
      ];
    };
    assert.deepEqual(await board.top(10, totals), [
      { userId: 2, points: 900 },
      { userId: 1, points: 250 },
    ]);
    await board.record(1, 1000);
    assert.deepEqual(await board.top(1, totals), [{ userId: 1, points: 1000 }]);
    assert.equal(reads, 1);
  });

  it("never lowers a total (a late write of an older total loses)", async () => {
    const board = new MemoryLeaderboard();
    await board.record(7, 300);
    await board.record(7, 200);
    assert.deepEqual(await board.top(5, async () => []), [{ userId: 7, points: 300 }]);
  });

  it("rebuilds after a reset, as after a Redis restart", async () => {
    const board = new MemoryLeaderboard();
    await board.top(5, async () => [{ userId: 1, earned: 10 }]);
    board.reset();
    assert.deepEqual(await board.top(5, async () => [{ userId: 3, earned: 40 }]), [{ userId: 3, points: 40 }]);
  });
});
