import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { loadConfig, migrationsDir, packageVersion } from "../src/config.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

describe("loadConfig", () => {
  it("has container-friendly defaults", () => {
    const config = loadConfig({ DATA_STORE: "memory" });
    assert.equal(config.host, "0.0.0.0");
    assert.equal(config.port, 3000);
    assert.equal(config.version, pkg.version);
    assert.equal(config.commit, "unknown");
    assert.equal(config.forceUnhealthy, false);
    assert.deepEqual(config.corsOrigins, []);
  });

  it("splits CORS_ORIGINS", () => {
    assert.deepEqual(loadConfig({ DATA_STORE: "memory", CORS_ORIGINS: " http://a.test/, http://b.test:8080 ," }).corsOrigins, [
      "http://a.test",
      "http://b.test:8080",
    ]);
  });

  it("reads PORT, HOST, APP_VERSION, GIT_SHA", () => {
    const config = loadConfig({ DATA_STORE: "memory", PORT: "4001", HOST: "127.0.0.1", APP_VERSION: "2.3.4", GIT_SHA: "abc123" });
    assert.deepEqual([config.port, config.host, config.version, config.commit], [4001, "127.0.0.1", "2.3.4", "abc123"]);
  });

  it("names the variable at fault", () => {
    assert.throws(() => loadConfig({ DATA_STORE: "memory", PORT: "http" }), /PORT must be an integer/);
    assert.throws(() => loadConfig({ DATA_STORE: "memory", SHUTDOWN_TIMEOUT_MS: "-1" }), /SHUTDOWN_TIMEOUT_MS/);
    assert.throws(() => loadConfig({ DATA_STORE: "files" }), /DATA_STORE must be postgres or memory/);
  });

  it("finds the package version walking up from the compiled module", () => {
    assert.equal(packageVersion(), pkg.version);
    assert.equal(packageVersion("/"), "0.0.0");
  });

  it("needs DATABASE_URL and REDIS_URL for the postgres store, and checks their schemes", () => {
    const db = "postgresql://loyalty:secret@127.0.0.1:5435/loyalty";
    const config = loadConfig({ DATABASE_URL: db, REDIS_URL: "redis://127.0.0.1:6380" });
    assert.deepEqual(
      [config.dataStore, config.databaseUrl, config.redisUrl, config.redisKeyPrefix, config.dbPoolSize],
      ["postgres", db, "redis://127.0.0.1:6380", "loyalty:", 10],
    );
    assert.throws(() => loadConfig({ REDIS_URL: "redis://r" }), /DATABASE_URL is not set/);
    assert.throws(() => loadConfig({ DATABASE_URL: db }), /REDIS_URL is not set/);
    assert.throws(() => loadConfig({ DATABASE_URL: "mysql://x/y", REDIS_URL: "redis://r" }), /DATABASE_URL must start with postgres/);
    assert.throws(() => loadConfig({ DATABASE_URL: "not a url", REDIS_URL: "redis://r" }), /DATABASE_URL is not a URL/);
    assert.throws(() => loadConfig({ DATABASE_URL: db, REDIS_URL: "http://r" }), /REDIS_URL must start with redis/);
    assert.equal(loadConfig({ DATA_STORE: "memory" }).databaseUrl, "");
  });

  it("finds the committed migrations beside the package (MIGRATIONS_DIR overrides)", () => {
    assert.match(migrationsDir({}), /prisma\/migrations$/);
    assert.equal(migrationsDir({ MIGRATIONS_DIR: "/tmp/m" }), "/tmp/m");
  });
});
