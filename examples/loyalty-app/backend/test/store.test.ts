import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConflictError, NotFoundError, ValidationError } from "../src/errors.js";
import { MemoryStore, seededStore } from "../src/store.js";

async function storeWithMember(): Promise<{ store: MemoryStore; userId: number }> {
  const store = new MemoryStore(() => new Date("2025-01-01T00:00:00Z"));
  const user = await store.createUser({ email: "Ann@Example.com ", name: " Ann " });
  return { store, userId: user.id };
}

describe("MemoryStore", () => {
  it("creates users with normalised email and name", async () => {
    const { store, userId } = await storeWithMember();
    const user = await store.getUser(userId);
    assert.equal(user.email, "ann@example.com");
    assert.equal(user.name, "Ann");
    assert.deepEqual(user.createdAt, new Date("2025-01-01T00:00:00Z"));
  });

  it("refuses a bad email and a duplicate email", async () => {
    const { store } = await storeWithMember();
    await assert.rejects(() => store.createUser({ email: "nope", name: "X" }), ValidationError);
    await assert.rejects(() => store.createUser({ email: "ann@example.com", name: "Other" }), ConflictError);
  });

  it("sums the ledger into a balance", async () => {
    const { store, userId } = await storeWithMember();
    assert.equal(await store.balance(userId), 0);
    await store.earn(userId, 120, "purchase #1");
    await store.earn(userId, 30, "purchase #2");
    assert.equal(await store.balance(userId), 150);
    assert.deepEqual(
      (await store.entries(userId)).map((e) => [e.delta, e.kind]),
      [
        [120, "EARN"],
        [30, "EARN"],
      ],
    );
  });

  it("validates earned points", async () => {
    const { store, userId } = await storeWithMember();
    for (const points of [0, -5, 1.5, 2_000_000]) {
      await assert.rejects(() => store.earn(userId, points, "x"), ValidationError, `points=${points}`);
    }
    await assert.rejects(() => store.earn(userId, 10, "   "), ValidationError);
    await assert.rejects(() => store.earn(999, 10, "x"), NotFoundError);
  });

  it("redeems a reward: debits the cost and takes one from stock", async () => {
    const { store, userId } = await storeWithMember();
    const reward = await store.createReward({ name: "Mug", cost: 100, stock: 1 });
    await store.earn(userId, 250, "signup");
    const redemption = await store.redeem(userId, reward.id);
    assert.equal(redemption.cost, 100);
    assert.equal(await store.balance(userId), 150);
    assert.equal((await store.listRewards())[0]?.stock, 0);
    assert.equal((await store.entries(userId)).at(-1)?.kind, "REDEEM");
    assert.deepEqual(await store.redemptionsOf(userId), [redemption]);
    // out of stock now, even with enough points
    await assert.rejects(() => store.redeem(userId, reward.id), /out of stock/);
  });

  it("refuses a redemption without enough points and leaves everything unchanged", async () => {
    const { store, userId } = await storeWithMember();
    const reward = await store.createReward({ name: "Flight", cost: 5000, stock: 3 });
    await store.earn(userId, 10, "signup");
    await assert.rejects(() => store.redeem(userId, reward.id), /not enough points: balance 10/);
    assert.equal(await store.balance(userId), 10);
    assert.equal((await store.listRewards())[0]?.stock, 3);
    await assert.rejects(() => store.redeem(userId, 42), NotFoundError);
  });

  it("seeds a catalogue and a demo member", async () => {
    const store = await seededStore();
    assert.equal((await store.listRewards()).length, 3);
    const [demo] = await store.listUsers();
    assert.equal(demo?.user.email, "demo@example.com");
    assert.equal(demo?.balance, 250);
  });

  it("totals the points each member earned (redemptions do not count)", async () => {
    const { store, userId } = await storeWithMember();
    const bob = await store.createUser({ email: "bob@example.com", name: "Bob" });
    const reward = await store.createReward({ name: "Mug", cost: 100, stock: 5 });
    await store.earn(userId, 300, "order");
    await store.redeem(userId, reward.id);
    await store.earn(bob.id, 50, "order");
    assert.equal(await store.earned(userId), 300);
    assert.deepEqual(await store.earnedTotals(), [
      { userId, earned: 300 },
      { userId: bob.id, earned: 50 },
    ]);
    assert.deepEqual((await store.usersById([bob.id, 999])).map((u) => u.name), ["Bob"]);
  });

  it("validates new rewards", async () => {
    const { store } = await storeWithMember();
    await assert.rejects(() => store.createReward({ name: " ", cost: 1, stock: 1 }), ValidationError);
    await assert.rejects(() => store.createReward({ name: "X", cost: 0, stock: 1 }), /cost must be/);
    await assert.rejects(() => store.createReward({ name: "X", cost: 1, stock: -1 }), /stock must be/);
    await store.createReward({ name: "X", cost: 1, stock: 0 });
    await assert.rejects(() => store.createReward({ name: "X", cost: 2, stock: 2 }), ConflictError);
  });
});
