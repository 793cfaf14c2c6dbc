import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createApp } from "../src/app.js";
import { seededStore } from "../src/store.js";

let server: Server;
let base: string;

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
    server = createServer(createApp(seededStore(), { version: "9.9.9", commit: "deadbeef" }));
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
    assert.deepEqual(await res.json(), { status: "ok", version: "9.9.9", commit: "deadbeef" });
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
    const open = createServer(createApp(seededStore(), { version: "1", commit: "c", corsOrigins: ["http://127.0.0.1:4201"] }));
    await new Promise<void>((resolve) => open.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(open.address() as AddressInfo).port}/api/users/1/points`;
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
      open.closeAllConnections();
      await new Promise((resolve) => open.close(resolve));
    }
  });

  it("reports unhealthy when told to", async () => {
    const sick = createServer(createApp(seededStore(), { version: "1", commit: "c", forceUnhealthy: true }));
    await new Promise<void>((resolve) => sick.listen(0, "127.0.0.1", resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(sick.address() as AddressInfo).port}/api/health`);
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { status: string }).status, "unhealthy");
    } finally {
      sick.closeAllConnections();
      await new Promise((resolve) => sick.close(resolve));
    }
  });
});
