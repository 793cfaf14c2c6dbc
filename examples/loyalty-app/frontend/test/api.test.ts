import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Api, ApiError, apiBase } from "../src/api.js";

function fakeFetch(status: number, body: string, seen: Array<[string, RequestInit | undefined]>) {
  return async (input: string, init?: RequestInit): Promise<Response> => {
    seen.push([input, init]);
    return new Response(body, { status, headers: { "content-type": "application/json" } });
  };
}

describe("Api", () => {
  it("GETs JSON from base + path", async () => {
    const seen: Array<[string, RequestInit | undefined]> = [];
    const api = new Api("http://api.test", fakeFetch(200, '{"status":"ok","version":"1","commit":"c"}', seen));
    assert.deepEqual(await api.health(), { status: "ok", version: "1", commit: "c" });
    assert.equal(seen[0]?.[0], "http://api.test/api/health");
    assert.equal(seen[0]?.[1]?.method, "GET");
  });

  it("POSTs a JSON body", async () => {
    const seen: Array<[string, RequestInit | undefined]> = [];
    const api = new Api("", fakeFetch(201, '{"balance":20}', seen));
    assert.deepEqual(await api.redeem(3, 1), { balance: 20 });
    assert.equal(seen[0]?.[0], "/api/users/3/redemptions");
    assert.equal(seen[0]?.[1]?.body, '{"rewardId":1}');
  });

  it("signs up and reads the leaderboard", async () => {
    const seen: Array<[string, RequestInit | undefined]> = [];
    const api = new Api("", fakeFetch(201, '{"user":{"id":7},"balance":0,"leaders":[{"rank":1}]}', seen));
    assert.equal((await api.signUp("a@b.test", "Ann")).user.id, 7);
    assert.deepEqual([seen[0]?.[0], seen[0]?.[1]?.method, seen[0]?.[1]?.body], ["/api/users", "POST", '{"email":"a@b.test","name":"Ann"}']);
    assert.deepEqual(await api.leaderboard(3), [{ rank: 1 }]);
    assert.equal(seen[1]?.[0], "/api/leaderboard?limit=3");
  });

  it("turns an error response into ApiError with the server's message", async () => {
    const api = new Api("", fakeFetch(409, '{"error":"not enough points"}', []));
    await assert.rejects(api.redeem(1, 1), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 409);
      assert.equal(err.message, "not enough points");
      return true;
    });
    const html = new Api("", fakeFetch(502, "<html>bad gateway</html>", []));
    await assert.rejects(html.rewards(), /HTTP 502/);
  });

  it("takes the base URL from config.json, else the fallback", async () => {
    const seen: Array<[string, RequestInit | undefined]> = [];
    assert.equal(await apiBase(fakeFetch(200, '{"apiBase":"http://127.0.0.1:4001/"}', seen), ""), "http://127.0.0.1:4001");
    assert.equal(seen[0]?.[0], "./config.json");
    assert.equal(await apiBase(fakeFetch(200, '{"apiBase":""}', []), "/fallback"), "/fallback");
    assert.equal(await apiBase(fakeFetch(404, "<html></html>", []), ""), "");
    assert.equal(await apiBase(fakeFetch(200, "not json", []), "x"), "x");
    const failing = async (): Promise<Response> => {
      throw new TypeError("network down");
    };
    assert.equal(await apiBase(failing, "y"), "y");
  });
});
