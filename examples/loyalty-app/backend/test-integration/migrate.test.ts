// The migrator and `npm run db:migrate:deploy` against a real Postgres.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { migrationsDir } from "../src/config.js";
import { loadMigrations, migrate } from "../src/migrator.js";
import { PrismaStore } from "../src/prisma-store.js";
import { freshDatabase, onFreshDatabase, withClient } from "./support.js";

const MIGRATE = fileURLToPath(new URL("../src/migrate.js", import.meta.url));
const committed = loadMigrations(migrationsDir({}));
const scratch = mkdtempSync(join(tmpdir(), "migrate-it-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** The committed migrations plus extra ones, in a folder of their own. */
function withExtra(extra: Record<string, string>): string {
  const dir = mkdtempSync(join(scratch, "m-"));
  cpSync(migrationsDir({}), dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, "migration.sql"), sql);
  }
  return dir;
}

const rows = (url: string) =>
  withClient(url, async (c) =>
    (await c.query(`SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count, logs FROM "_prisma_migrations" ORDER BY started_at, migration_name`)).rows,
  );

function runCli(env: Record<string, string>) {
  const result = spawnSync(process.execPath, [MIGRATE], { env: { ...process.env, APP_VERSION: "9.9.9", ...env }, encoding: "utf8", timeout: 60_000 });
  return { code: result.status, out: result.stdout + result.stderr };
}

describe("migrator on Postgres", () => {
  it("applies every committed migration to an empty database and records each as Prisma does", async () => {
    await onFreshDatabase("apply", async (db) => {
      const applied = await withClient(db.url, (c) => migrate(c, committed));
      assert.deepEqual(applied.applied, committed.map((m) => m.name));
      const recorded = await rows(db.url);
      assert.deepEqual(recorded.map((r) => [r.migration_name, r.checksum, r.applied_steps_count, r.rolled_back_at]),
        committed.map((m) => [m.name, m.checksum, 1, null]));
      assert.ok(recorded.every((r) => r.finished_at instanceof Date));
      const tables = await withClient(db.url, async (c) =>
        (await c.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)).rows.map((r) => r.table_name),
      );
      assert.deepEqual(tables, ["PointsLedger", "Redemption", "Reward", "User", "_prisma_migrations"]);
    });
  });

  it("is idempotent: a second run applies nothing and changes no row", async () => {
    await onFreshDatabase("idem", async (db) => {
      await withClient(db.url, (c) => migrate(c, committed));
      const before = await rows(db.url);
      const again = await withClient(db.url, (c) => migrate(c, committed));
      assert.deepEqual(again, { applied: [], alreadyApplied: committed.length, warnings: [] });
      assert.deepEqual(await rows(db.url), before);
    });
  });

  it("rolls a failing migration back whole, records the attempt, and applies the fixed one next time", async () => {
    await onFreshDatabase("fail", async (db) => {
      const broken = loadMigrations(withExtra({ "29990101000000_broken": 'CREATE TABLE "Half" ("id" INT);\nSELECT * FROM "NoSuchTable";\n' }));
      await assert.rejects(() => withClient(db.url, (c) => migrate(c, broken)), /29990101000000_broken failed and was rolled back.*NoSuchTable.*SQLSTATE 42P01/);
      const half = await withClient(db.url, async (c) => (await c.query(`SELECT to_regclass('"Half"') AS t`)).rows[0].t);
      assert.equal(half, null, "the failed migration's first statement must be rolled back too");
      const last = (await rows(db.url)).at(-1)!;
      assert.equal(last.migration_name, "29990101000000_broken");
      assert.equal(last.finished_at, null);
      assert.ok(last.rolled_back_at instanceof Date);
      assert.match(last.logs, /NoSuchTable/);

      const fixed = loadMigrations(withExtra({ "29990101000000_broken": 'CREATE TABLE "Half" ("id" INT);\n' }));
      const result = await withClient(db.url, (c) => migrate(c, fixed));
      assert.deepEqual(result.applied, ["29990101000000_broken"]);
    });
  });

  it("serialises two migrators on one database: each migration is applied exactly once", async () => {
    await onFreshDatabase("race", async (db) => {
      const slow = loadMigrations(withExtra({ "29990101000000_slow": "SELECT pg_sleep(0.5);" }));
      const [a, b] = await Promise.all([withClient(db.url, (c) => migrate(c, slow)), withClient(db.url, (c) => migrate(c, slow))]);
      assert.deepEqual([...a.applied, ...b.applied].sort(), slow.map((m) => m.name).sort());
      const names = (await rows(db.url)).map((r) => r.migration_name);
      assert.equal(new Set(names).size, names.length, `a migration was recorded twice: ${names}`);
    });
  });

  it("an expand-only migration leaves the previous release's client working (blue-green)", async () => {
    await onFreshDatabase("expand", async (db) => {
      await withClient(db.url, (c) => migrate(c, committed));
      const old = new PrismaStore({ databaseUrl: db.url, poolSize: 2, requiredMigration: committed.at(-1)!.name });
      try {
        const v2 = loadMigrations(
          withExtra({
            "29990101000000_reward_description": 'ALTER TABLE "Reward" ADD COLUMN "description" TEXT;',
            "29990101000100_user_tier": `ALTER TABLE "User" ADD COLUMN "tier" TEXT NOT NULL DEFAULT 'basic';`,
          }),
        );
        await withClient(db.url, (c) => migrate(c, v2));
        // the old release reads, writes and passes its health check on the new schema
        await old.check();
        assert.equal((await old.listRewards()).length, 3);
        const user = await old.createUser({ email: "old@example.com", name: "Old Release" });
        await old.earn(user.id, 500, "order");
        await old.redeem(user.id, (await old.listRewards())[0]!.id);
        const tier = await withClient(db.url, async (c) => (await c.query(`SELECT "tier" FROM "User" WHERE id = $1`, [user.id])).rows[0].tier);
        assert.equal(tier, "basic");
      } finally {
        await old.close();
      }
    });
  });

  it("the store's health check fails until this release's newest migration is applied", async () => {
    const db = await freshDatabase("health");
    const store = new PrismaStore({ databaseUrl: db.url, poolSize: 1, requiredMigration: committed.at(-1)!.name });
    try {
      await assert.rejects(() => store.check(), /no migrations applied to the database/);
      await withClient(db.url, (c) => migrate(c, committed.slice(0, 1)));
      await assert.rejects(() => store.check(), new RegExp(`migration ${committed.at(-1)!.name} is not applied`));
      await withClient(db.url, (c) => migrate(c, committed));
      await store.check();
    } finally {
      await store.close();
      await db.drop();
    }
  });

  it("`npm run db:migrate:deploy` migrates, says so, and says nothing is left the second time", async () => {
    await onFreshDatabase("cli", async (db) => {
      const first = runCli({ DATABASE_URL: db.url });
      assert.equal(first.code, 0, first.out);
      assert.match(first.out, new RegExp(`applied ${committed.length} migration\\(s\\), 0 were applied before`));
      const second = runCli({ DATABASE_URL: db.url });
      assert.equal(second.code, 0, second.out);
      assert.match(second.out, /nothing to apply: all \d+ migration\(s\) are applied/);
    });
  });

  it("`db:migrate:deploy` fails clearly: MIGRATE_FAIL, no DATABASE_URL, a database that is not there", async () => {
    const failing = runCli({ MIGRATE_FAIL: "1" });
    assert.deepEqual([failing.code, /failing on purpose \(MIGRATE_FAIL is set\)/.test(failing.out)], [1, true], failing.out);
    const unset = runCli({ DATABASE_URL: "" });
    assert.deepEqual([unset.code, /DATABASE_URL is not set/.test(unset.out)], [2, true], unset.out);
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = "/no_such_database_here";
    const missing = runCli({ DATABASE_URL: url.toString(), MIGRATE_CONNECT_TIMEOUT_MS: "0" });
    assert.equal(missing.code, 1, missing.out);
    assert.match(missing.out, /cannot connect to the database: .*no_such_database_here/);
  });
});
