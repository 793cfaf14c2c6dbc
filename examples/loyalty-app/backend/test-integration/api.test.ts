// The HTTP API over the real services: what a member does, end to end, through Postgres and Redis.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createApp } from "../src/app.js";
import { migratedStack, type Stack } from "./support.js";

let stack: Stack;
let server: Server;
let base: string;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

before(async () => {
  stack = await migratedStack("api");
  server = createServer(createApp(stack, { version: "it", commit: "c0ffee" }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await stack?.close();
});

describe("HTTP API on Postgres and Redis", () => {
  it("is healthy when both services answer and the schema is migrated", async () => {
    const health = await call("GET", "/api/health");
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, { status: "ok", version: "it", commit: "c0ffee", checks: { database: "ok", redis: "ok" } });
  });

  it("signs up, earns, redeems, and shows it all in the ledger, the redemptions and the leaderboard", async () => {
    const created = await call("POST", "/api/users", { email: "kim@example.com", name: "Kim" });
    assert.equal(created.status, 201);
    const id = created.json.user.id as number;
    assert.equal((await call("POST", "/api/users", { email: "KIM@example.com", name: "Kim again" })).status, 409);

    assert.equal((await call("POST", `/api/users/${id}/points`, { points: 600, reason: "order 1" })).json.balance, 600);
    const cinema = (await call("GET", "/api/rewards")).json.rewards.find((r: any) => r.name === "Cinema ticket");
    const redeemed = await call("POST", `/api/users/${id}/redemptions`, { rewardId: cinema.id });
    assert.deepEqual([redeemed.status, redeemed.json.balance], [201, 150]);
    const short = await call("POST", `/api/users/${id}/redemptions`, { rewardId: cinema.id });
    assert.deepEqual([short.status, short.json.error], [409, "not enough points: balance 150, 'Cinema ticket' costs 450"]);

    const ledger = await call("GET", `/api/users/${id}/points`);
    assert.deepEqual(ledger.json.entries.map((e: any) => [e.delta, e.kind]), [
      [600, "EARN"],
      [-450, "REDEEM"],
    ]);
    assert.equal((await call("GET", `/api/users/${id}/redemptions`)).json.redemptions.length, 1);
    const board = await call("GET", "/api/leaderboard?limit=2");
    assert.deepEqual(board.json.leaders, [
      { rank: 1, userId: id, name: "Kim", points: 600 },
      { rank: 2, userId: 1, name: "Demo Member", points: 250 },
    ]);
    assert.equal((await call("GET", `/api/users/${id}`)).json.balance, 150);
  });

  it("answers 409 for a reward that ran out, for everyone", async () => {
    const reward = await call("POST", "/api/rewards", { name: "Signed poster", cost: 10, stock: 1 });
    assert.equal(reward.status, 201);
    const first = (await call("POST", "/api/users", { email: "first@example.com", name: "First" })).json.user.id;
    const second = (await call("POST", "/api/users", { email: "second@example.com", name: "Second" })).json.user.id;
    for (const who of [first, second]) await call("POST", `/api/users/${who}/points`, { points: 50, reason: "signup" });
    assert.equal((await call("POST", `/api/users/${first}/redemptions`, { rewardId: reward.json.reward.id })).status, 201);
    const late = await call("POST", `/api/users/${second}/redemptions`, { rewardId: reward.json.reward.id });
    assert.deepEqual([late.status, late.json.error], [409, "reward 'Signed poster' is out of stock"]);
    assert.equal((await call("GET", `/api/users/${second}`)).json.balance, 50);
  });
});
