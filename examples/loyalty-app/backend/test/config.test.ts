import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { loadConfig, packageVersion } from "../src/config.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

describe("loadConfig", () => {
  it("has container-friendly defaults", () => {
    const config = loadConfig({});
    assert.equal(config.host, "0.0.0.0");
    assert.equal(config.port, 3000);
    assert.equal(config.version, pkg.version);
    assert.equal(config.commit, "unknown");
    assert.equal(config.forceUnhealthy, false);
    assert.deepEqual(config.corsOrigins, []);
  });

  it("splits CORS_ORIGINS", () => {
    assert.deepEqual(loadConfig({ CORS_ORIGINS: " http://a.test/, http://b.test:8080 ," }).corsOrigins, [
      "http://a.test",
      "http://b.test:8080",
    ]);
  });

  it("reads PORT, HOST, APP_VERSION, GIT_SHA", () => {
    const config = loadConfig({ PORT: "4001", HOST: "127.0.0.1", APP_VERSION: "2.3.4", GIT_SHA: "abc123" });
    assert.deepEqual([config.port, config.host, config.version, config.commit], [4001, "127.0.0.1", "2.3.4", "abc123"]);
  });

  it("names the variable at fault", () => {
    assert.throws(() => loadConfig({ PORT: "http" }), /PORT must be an integer/);
    assert.throws(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: "-1" }), /SHUTDOWN_TIMEOUT_MS/);
  });

  it("finds the package version walking up from the compiled module", () => {
    assert.equal(packageVersion(), pkg.version);
    assert.equal(packageVersion("/"), "0.0.0");
  });
});
