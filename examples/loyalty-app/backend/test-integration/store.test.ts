// The Postgres store (Prisma 7 client over @prisma/adapter-pg) on a migrated database of its own.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConflictError, NotFoundError, ValidationError } from "../src/errors.js";
import { migratedStack, type Stack } from "./support.js";

let stack: Stack;

before(async () => {
  stack = await migratedStack("store");
});
after(async () => {
  await stack?.close();
});

const member = (tag: string) => stack.store.createUser({ email: `${tag}-${Date.now()}-${Math.random()}@example.com`, name: tag });

describe("PrismaStore on Postgres", () => {
  it("has the demo catalogue and member from the demo-data migration", async () => {
    assert.deepEqual(
      (await stack.store.listRewards()).map((r) => [r.name, r.cost, r.stock]),
      [
        ["Free coffee", 100, 50],
        ["Cinema ticket", 450, 20],
        ["Weekend getaway", 5000, 2],
      ],
    );
    const [demo] = await stack.store.listUsers();
    assert.deepEqual([demo?.user.email, demo?.balance], ["demo@example.com", 250]);
  });

  it("creates members with a normalised email, and refuses the same email twice (any case)", async () => {
    const user = await stack.store.createUser({ email: " Zed@Example.COM ", name: " Zed " });
    assert.deepEqual([user.email, user.name], ["zed@example.com", "Zed"]);
    assert.ok(user.createdAt instanceof Date);
    assert.deepEqual(await stack.store.getUser(user.id), user);
    await assert.rejects(() => stack.store.createUser({ email: "ZED@example.com", name: "Other" }), ConflictError);
    await assert.rejects(() => stack.store.createUser({ email: "nope", name: "X" }), ValidationError);
    await assert.rejects(() => stack.store.getUser(999_999), NotFoundError);
  });

  it("keeps the ledger in order and sums it into the balance", async () => {
    const user = await member("ledger");
    await stack.store.earn(user.id, 120, "order 1");
    await stack.store.earn(user.id, 30, "order 2");
    assert.equal(await stack.store.balance(user.id), 150);
    assert.deepEqual(
      (await stack.store.entries(user.id)).map((e) => [e.delta, e.kind, e.reason]),
      [
        [120, "EARN", "order 1"],
        [30, "EARN", "order 2"],
      ],
    );
    await assert.rejects(() => stack.store.earn(user.id, 0, "x"), ValidationError);
    await assert.rejects(() => stack.store.earn(999_999, 10, "x"), NotFoundError);
  });

  it("redeems: debits the cost, takes one from stock, writes the redemption and a REDEEM entry", async () => {
    const user = await member("redeem");
    const reward = await stack.store.createReward({ name: `Mug ${user.id}`, cost: 100, stock: 3 });
    await stack.store.earn(user.id, 250, "signup");
    const redemption = await stack.store.redeem(user.id, reward.id);
    assert.deepEqual([redemption.userId, redemption.rewardId, redemption.cost], [user.id, reward.id, 100]);
    assert.equal(await stack.store.balance(user.id), 150);
    assert.equal((await stack.store.listRewards()).find((r) => r.id === reward.id)?.stock, 2);
    assert.equal((await stack.store.entries(user.id)).at(-1)?.kind, "REDEEM");
    assert.deepEqual(await stack.store.redemptionsOf(user.id), [redemption]);
  });

  it("refuses too few points and out of stock, and changes nothing either time", async () => {
    const user = await member("refuse");
    const pricey = await stack.store.createReward({ name: `Flight ${user.id}`, cost: 5000, stock: 3 });
    const gone = await stack.store.createReward({ name: `Sold out ${user.id}`, cost: 1, stock: 0 });
    await stack.store.earn(user.id, 10, "signup");
    await assert.rejects(() => stack.store.redeem(user.id, pricey.id), /not enough points: balance 10, 'Flight \d+' costs 5000/);
    await assert.rejects(() => stack.store.redeem(user.id, gone.id), /is out of stock/);
    await assert.rejects(() => stack.store.redeem(user.id, 999_999), NotFoundError);
    assert.equal(await stack.store.balance(user.id), 10);
    assert.equal((await stack.store.listRewards()).find((r) => r.id === pricey.id)?.stock, 3);
    assert.deepEqual(await stack.store.redemptionsOf(user.id), []);
  });

  it("gives the last item in stock to exactly one of many members redeeming it at once", async () => {
    const reward = await stack.store.createReward({ name: `Last one ${Date.now()}`, cost: 10, stock: 1 });
    const members = await Promise.all(Array.from({ length: 8 }, (_, i) => member(`race${i}`)));
    await Promise.all(members.map((m) => stack.store.earn(m.id, 100, "signup")));
    const results = await Promise.allSettled(members.map((m) => stack.store.redeem(m.id, reward.id)));
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
    for (const r of results) if (r.status === "rejected") assert.match(String(r.reason), /out of stock/);
    assert.equal((await stack.store.listRewards()).find((r) => r.id === reward.id)?.stock, 0);
  });

  it("never lets one member's concurrent redemptions spend more than the balance", async () => {
    const user = await member("spender");
    const reward = await stack.store.createReward({ name: `Snack ${user.id}`, cost: 100, stock: 100 });
    await stack.store.earn(user.id, 350, "signup");
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => stack.store.redeem(user.id, reward.id)));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 3);
    for (const r of results) if (r.status === "rejected") assert.ok(r.reason instanceof ConflictError, String(r.reason));
    assert.equal(await stack.store.balance(user.id), 50);
  });

  it("totals what each member earned, for the leaderboard", async () => {
    const user = await member("earner");
    const reward = await stack.store.createReward({ name: `Pen ${user.id}`, cost: 50, stock: 5 });
    await stack.store.earn(user.id, 70, "a");
    await stack.store.earn(user.id, 30, "b");
    await stack.store.redeem(user.id, reward.id);
    assert.equal(await stack.store.earned(user.id), 100);
    const totals = await stack.store.earnedTotals();
    assert.deepEqual(totals.find((t) => t.userId === user.id), { userId: user.id, earned: 100 });
    assert.deepEqual((await stack.store.usersById([user.id, 999_999])).map((u) => u.id), [user.id]);
  });
});
