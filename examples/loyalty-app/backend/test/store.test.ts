import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConflictError, NotFoundError, ValidationError } from "../src/errors.js";
import { LoyaltyStore, seededStore } from "../src/store.js";

function storeWithMember(): { store: LoyaltyStore; userId: number } {
  const store = new LoyaltyStore(() => new Date("2025-01-01T00:00:00Z"));
  const user = store.createUser({ email: "Ann@Example.com ", name: " Ann " });
  return { store, userId: user.id };
}

describe("LoyaltyStore", () => {
  it("creates users with normalised email and name", () => {
    const { store, userId } = storeWithMember();
    const user = store.getUser(userId);
    assert.equal(user.email, "ann@example.com");
    assert.equal(user.name, "Ann");
    assert.deepEqual(user.createdAt, new Date("2025-01-01T00:00:00Z"));
  });

  it("refuses a bad email and a duplicate email", () => {
    const { store } = storeWithMember();
    assert.throws(() => store.createUser({ email: "nope", name: "X" }), ValidationError);
    assert.throws(() => store.createUser({ email: "ann@example.com", name: "Other" }), ConflictError);
  });

  it("sums the ledger into a balance", () => {
    const { store, userId } = storeWithMember();
    assert.equal(store.balance(userId), 0);
    store.earn(userId, 120, "purchase #1");
    store.earn(userId, 30, "purchase #2");
    assert.equal(store.balance(userId), 150);
    assert.deepEqual(
      store.entries(userId).map((e) => [e.delta, e.kind]),
      [
        [120, "EARN"],
        [30, "EARN"],
      ],
    );
  });

  it("validates earned points", () => {
    const { store, userId } = storeWithMember();
    for (const points of [0, -5, 1.5, 2_000_000]) {
      assert.throws(() => store.earn(userId, points, "x"), ValidationError, `points=${points}`);
    }
    assert.throws(() => store.earn(userId, 10, "   "), ValidationError);
    assert.throws(() => store.earn(999, 10, "x"), NotFoundError);
  });

  it("redeems a reward: debits the cost and takes one from stock", () => {
    const { store, userId } = storeWithMember();
    const reward = store.createReward({ name: "Mug", cost: 100, stock: 1 });
    store.earn(userId, 250, "signup");
    const redemption = store.redeem(userId, reward.id);
    assert.equal(redemption.cost, 100);
    assert.equal(store.balance(userId), 150);
    assert.equal(store.listRewards()[0]?.stock, 0);
    assert.equal(store.entries(userId).at(-1)?.kind, "REDEEM");
    assert.deepEqual(store.redemptionsOf(userId), [redemption]);
    // out of stock now, even with enough points
    assert.throws(() => store.redeem(userId, reward.id), /out of stock/);
  });

  it("refuses a redemption without enough points and leaves everything unchanged", () => {
    const { store, userId } = storeWithMember();
    const reward = store.createReward({ name: "Flight", cost: 5000, stock: 3 });
    store.earn(userId, 10, "signup");
    assert.throws(() => store.redeem(userId, reward.id), /not enough points: balance 10/);
    assert.equal(store.balance(userId), 10);
    assert.equal(store.listRewards()[0]?.stock, 3);
    assert.throws(() => store.redeem(userId, 42), NotFoundError);
  });

  it("seeds a catalogue and a demo member", () => {
    const store = seededStore();
    assert.equal(store.listRewards().length, 3);
    const [demo] = store.listUsers();
    assert.equal(demo?.user.email, "demo@example.com");
    assert.equal(demo?.balance, 250);
  });
});
