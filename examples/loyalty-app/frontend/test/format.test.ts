import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  availability,
  describeEntry,
  describeHealth,
  formatBalance,
  formatPoints,
  pointsToNextTier,
  tierFor,
} from "../src/format.js";

describe("format", () => {
  it("puts balances into tiers", () => {
    assert.deepEqual(
      [0, 299, 300, 999, 1000, 50_000].map(tierFor),
      ["Bronze", "Bronze", "Silver", "Silver", "Gold", "Gold"],
    );
    assert.equal(pointsToNextTier(250), 50);
    assert.equal(pointsToNextTier(300), 700);
    assert.equal(pointsToNextTier(1000), null);
  });

  it("formats points with a sign and thousands separators", () => {
    assert.equal(formatPoints(1200), "+1,200 pts");
    assert.equal(formatPoints(-100), "−100 pts");
    assert.equal(formatPoints(0), "0 pts");
    assert.equal(formatBalance(12345), "12,345 pts");
  });

  it("describes ledger entries and health", () => {
    const entry = { id: 1, userId: 1, delta: 50, kind: "EARN", reason: "order 7", createdAt: "2025-03-04T10:00:00.000Z" } as const;
    assert.equal(describeEntry(entry), "2025-03-04 +50 pts order 7");
    assert.equal(describeHealth({ status: "ok", version: "1.4.0", commit: "0123456789abcdef" }), "API ok · v1.4.0 · 0123456");
    assert.equal(describeHealth({ status: "ok", version: "1.4.0", commit: "unknown" }), "API ok · v1.4.0 · unknown");
  });

  it("tells which rewards a member can take", () => {
    const reward = { id: 1, name: "Mug", cost: 100, stock: 2, active: true };
    assert.equal(availability(reward, 150), "available");
    assert.equal(availability(reward, 99), "short");
    assert.equal(availability(reward, null), "available");
    assert.equal(availability({ ...reward, stock: 0 }, 1000), "out-of-stock");
  });
});
