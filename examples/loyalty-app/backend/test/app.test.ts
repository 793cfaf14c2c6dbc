import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createApp, type AppInfo, type AppServices } from "../src/app.js";
import { MemoryLeaderboard } from "../src/leaderboard.js";
import { seededStore } from "../src/store.js";

let server: Server;
let base: string;

async function services(): Promise<AppServices> {
  return { store: await seededStore(), leaderboard: new MemoryLeaderboard() };
}

/** A server of its own on a free port, for a test that needs other settings; closed by the returned function. */
async function serve(info: AppInfo, made?: AppServices): Promise<{ url: string; close: () => Promise<void> }> {
  const own = createServer(createApp(made ?? (await services()), info));
  await new Promise<void>((resolve) => own.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(own.address() as AddressInfo).port}`,
    close: async () => {
      own.closeAllConnections();
      await new Promise((resolve) => own.close(resolve));
    },
  };
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe("HTTP API", () => {
  before(async () => {
    server = createServer(createApp(await services(), { version: "9.9.9", commit: "deadbeef" }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("GET /api/health reports status, version and commit", async () => {
    const res = await fetch(`${base}/api/health`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    assert.deepEqual(await res.json(), {
      status: "ok",
      version: "9.9.9",
      commit: "deadbeef",
      checks: { database: "ok", redis: "ok" },
    });
  });

  it("lists rewards and the demo member", async () => {
    const rewards = await call("GET", "/api/rewards");
    assert.equal(rewards.status, 200);
    assert.deepEqual(
      rewards.json.rewards.map((r: { name: string }) => r.name),
      ["Free coffee", "Cinema ticket", "Weekend getaway"],
    );
    const users = await call("GET", "/api/users");
    assert.equal(users.json.users[0].balance, 250);
  });

  it("creates a member, earns points and redeems a reward", async () => {
    const created = await call("POST", "/api/users", { email: "bob@example.com", name: "Bob" });
    assert.equal(created.status, 201);
    const id = created.json.user.id as number;

    const earned = await call("POST", `/api/users/${id}/points`, { points: 120, reason: "order 1001" });
    assert.equal(earned.status, 201);
    assert.equal(earned.json.balance, 120);
    assert.equal(earned.json.entry.kind, "EARN");

    const coffee = (await call("GET", "/api/rewards")).json.rewards[0];
    const redeemed = await call("POST", `/api/users/${id}/redemptions`, { rewardId: coffee.id });
    assert.equal(redeemed.status, 201);
    assert.equal(redeemed.json.balance, 20);

    const points = await call("GET", `/api/users/${id}/points`);
    assert.deepEqual(
      points.json.entries.map((e: { delta: number }) => e.delta),
      [120, -100],
    );
    const again = await call("POST", `/api/users/${id}/redemptions`, { rewardId: coffee.id });
    assert.equal(again.status, 409);
    assert.match(again.json.error, /not enough points/);
  });

  it("answers bad requests with JSON errors", async () => {
    assert.equal((await call("GET", "/api/nope")).status, 404);
    assert.equal((await call("GET", "/api/users/abc")).status, 404);
    assert.equal((await call("GET", "/api/users/999")).status, 404);
    assert.equal((await call("DELETE", "/api/rewards")).status, 405);
    const invalid = await call("POST", "/api/users", "{not json");
    assert.equal(invalid.status, 400);
    assert.equal(invalid.json.error, "body is not valid JSON");
    const wrongType = await call("POST", "/api/users/1/points", { points: "10", reason: "x" });
    assert.equal(wrongType.status, 400);
    const res = await fetch(`${base}/api/users`, { method: "POST", body: "x" });
    assert.equal(res.status, 415);
  });

  it("answers CORS only for the configured origins", async () => {
    const open = await serve({ version: "1", commit: "c", corsOrigins: ["http://127.0.0.1:4201"] });
    const url = `${open.url}/api/users/1/points`;
    try {
      const preflight = await fetch(url, {
        method: "OPTIONS",
        headers: { origin: "http://127.0.0.1:4201", "access-control-request-method": "POST" },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get("access-control-allow-origin"), "http://127.0.0.1:4201");
      assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /POST/);
      const other = await fetch(url, { headers: { origin: "http://evil.test" } });
      assert.equal(other.status, 200);
      assert.equal(other.headers.get("access-control-allow-origin"), null);
    } finally {
      await open.close();
    }
  });

  it("reports unhealthy when told to", async () => {
    const sick = await serve({ version: "1", commit: "c", forceUnhealthy: true });
    try {
      const res = await fetch(`${sick.url}/api/health`);
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { status: string }).status, "unhealthy");
    } finally {
      await sick.close();
    }
  });

  it("answers 503 naming the check that failed, and 200 again once it passes", async () => {
    let redisUp = false;
    const checks = {
      database: async () => {},
      redis: async () => {
        if (!redisUp) throw new Error("connect ECONNREFUSED 127.0.0.1:6379");
      },
    };
    const app = await serve({ version: "1", commit: "c", checks });
    try {
      const down = await fetch(`${app.url}/api/health`);
      assert.equal(down.status, 503);
      assert.deepEqual(((await down.json()) as any).checks, { database: "ok", redis: "connect ECONNREFUSED 127.0.0.1:6379" });
      redisUp = true;
      const up = await fetch(`${app.url}/api/health`);
      assert.equal(up.status, 200);
      assert.equal(((await up.json()) as any).status, "ok");
    } finally {
      await app.close();
    }
  });

  it("ranks members on the leaderboard by points earned, and validates the limit", async () => {
    const made = await services();
    const app = await serve({ version: "1", commit: "c" }, made);
    const post = (path: string, body: unknown) =>
      fetch(app.url + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    try {
      const ann = ((await (await post("/api/users", { email: "ann@example.com", name: "Ann" })).json()) as any).user.id;
      await post(`/api/users/${ann}/points`, { points: 400, reason: "order" });
      await post(`/api/users/${ann}/points`, { points: 100, reason: "order" });
      const board = (await (await fetch(`${app.url}/api/leaderboard?limit=5`)).json()) as any;
      assert.deepEqual(board.leaders, [
        { rank: 1, userId: ann, name: "Ann", points: 500 },
        { rank: 2, userId: 1, name: "Demo Member", points: 250 },
      ]);
      // a redemption spends points but does not lower what was earned
      const coffee = (await made.store.listRewards())[0]!;
      assert.equal((await post(`/api/users/${ann}/redemptions`, { rewardId: coffee.id })).status, 201);
      const top = (await (await fetch(`${app.url}/api/leaderboard?limit=1`)).json()) as any;
      assert.deepEqual(top.leaders, [{ rank: 1, userId: ann, name: "Ann", points: 500 }]);
      for (const bad of ["0", "101", "x", "1.5"]) {
        assert.equal((await fetch(`${app.url}/api/leaderboard?limit=${bad}`)).status, 400, `limit=${bad}`);
      }
    } finally {
      await app.close();
    }
  });

  it("keeps an earn that the leaderboard could not record, and logs it", async () => {
    const made = await services();
    made.leaderboard.record = async () => {
      throw new Error("redis down");
    };
    const lines: string[] = [];
    const app = await serve({ version: "1", commit: "c", log: (l) => lines.push(l) }, made);
    try {
      const res = await fetch(`${app.url}/api/users/1/points`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ points: 5, reason: "order" }),
      });
      assert.equal(res.status, 201);
      assert.equal(((await res.json()) as any).balance, 255);
      assert.ok(lines.some((l) => l.includes("leaderboard not updated for user 1: redis down")), lines.join("\n"));
    } finally {
      await app.close();
    }
  });

  it("adds rewards to the catalogue", async () => {
    const created = await call("POST", "/api/rewards", { name: "Tote bag", cost: 80, stock: 1 });
    assert.equal(created.status, 201);
    assert.deepEqual(created.json.reward, { id: created.json.reward.id, name: "Tote bag", cost: 80, stock: 1, active: true });
    assert.equal((await call("POST", "/api/rewards", { name: "Tote bag", cost: 80, stock: 1 })).status, 409);
    assert.equal((await call("POST", "/api/rewards", { name: "Bad", cost: "80", stock: 1 })).status, 400);
  });
});
