// Runs the real entry point (compiled server.js) as a child process.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const SERVER = fileURLToPath(new URL("../src/server.js", import.meta.url));

async function start(env: Record<string, string> = {}): Promise<{ child: ChildProcess; base: string; output: () => string }> {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", APP_VERSION: "", GIT_SHA: "", DATA_STORE: "memory", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) return { child, base: `http://127.0.0.1:${m[1]}`, output: () => out };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`server did not start:\n${out}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("server.js", () => {
  it("serves health with APP_VERSION and GIT_SHA from the environment", async () => {
    const { child, base } = await start({ APP_VERSION: "1.2.3", GIT_SHA: "0123abc" });
    try {
      const body = await (await fetch(`${base}/api/health`)).json();
      assert.deepEqual(body, { status: "ok", version: "1.2.3", commit: "0123abc", checks: { database: "ok", redis: "ok" } });
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("on SIGTERM finishes the in-flight request, refuses new ones and exits 0", async () => {
    const { child, base, output } = await start();
    const exited = once(child, "exit");
    const slow = fetch(`${base}/api/slow?ms=700`).then(async (r) => [r.status, await r.json()] as const);
    await new Promise((resolve) => setTimeout(resolve, 150)); // the request is now in flight
    const t0 = Date.now();
    child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 100));
    await assert.rejects(fetch(`${base}/api/health`), "a new connection after SIGTERM must be refused");
    assert.deepEqual(await slow, [200, { waitedMs: 700 }]);
    const [code, signal] = await exited;
    assert.equal(signal, null, output());
    assert.equal(code, 0, output());
    assert.ok(Date.now() - t0 < 3000, "exit soon after the last response (keep-alive sockets closed)");
    assert.match(output(), /SIGTERM received: draining/);
  });

  it("exits 2 naming a bad PORT", async () => {
    const child = spawn(process.execPath, [SERVER], { env: { ...process.env, PORT: "http" }, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    const [code] = await once(child, "exit");
    assert.equal(code, 2);
    assert.match(err, /PORT must be an integer/);
  });

  it("exits 2 naming DATABASE_URL when the postgres store has no database", async () => {
    const env = { ...process.env, DATA_STORE: "", DATABASE_URL: "", REDIS_URL: "redis://127.0.0.1:1" };
    const child = spawn(process.execPath, [SERVER], { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    const [code] = await once(child, "exit");
    assert.equal(code, 2);
    assert.match(err, /DATABASE_URL is not set/);
  });
});
