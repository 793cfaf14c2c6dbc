// The migrator's pure parts, the committed migrations, and its SQL conversation with a recording fake.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { migrationsDir } from "../src/config.js";
import {
  checksum,
  contractingStatements,
  loadMigrations,
  migrate,
  MigrationError,
  planMigrations,
  type AppliedMigration,
  type Queryable,
} from "../src/migrator.js";
import { newestMigration } from "../src/services.js";

const scratch = mkdtempSync(join(tmpdir(), "migrator-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(scratch, "m-"));
  for (const [name, sql] of Object.entries(files)) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, "migration.sql"), sql);
  }
  writeFileSync(join(dir, "migration_lock.toml"), 'provider = "postgresql"\n');
  return dir;
}

const row = (name: string, sql: string, extra: Partial<AppliedMigration> = {}): AppliedMigration => ({
  name,
  checksum: checksum(sql),
  finishedAt: new Date(),
  rolledBackAt: null,
  startedAt: new Date("2025-01-01T00:00:00Z"),
  ...extra,
});

/** A fake connection that records every query and can fail the one whose text contains `failOn`. */
function recorder(applied: Record<string, unknown>[] = [], failOn?: string): Queryable & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    async query(sql: string) {
      log.push(sql.trim().split(/\s+/).slice(0, 3).join(" "));
      if (failOn !== undefined && sql.includes(failOn)) throw Object.assign(new Error(`boom in ${failOn}`), { code: "42601" });
      return { rows: sql.includes('FROM "_prisma_migrations"') ? applied : [] };
    },
  };
}

describe("migrator", () => {
  it("loads migrations in name order with a sha256 checksum, skipping migration_lock.toml", () => {
    const dir = folder({ "20250102_b": "SELECT 2;", "20250101_a": "SELECT 1;" });
    const migrations = loadMigrations(dir);
    assert.deepEqual(migrations.map((m) => m.name), ["20250101_a", "20250102_b"]);
    assert.equal(migrations[0]!.checksum, checksum("SELECT 1;"));
    assert.match(migrations[0]!.checksum, /^[0-9a-f]{64}$/);
  });

  it("refuses a migration folder without migration.sql, and a missing folder", () => {
    const dir = folder({ "20250101_a": "SELECT 1;" });
    mkdirSync(join(dir, "20250102_empty"));
    assert.throws(() => loadMigrations(dir), /20250102_empty has no migration\.sql/);
    assert.throws(() => loadMigrations(join(dir, "nope")), /no migrations folder at/);
  });

  it("plans only what the database has not finished; rolled-back attempts count as not applied", () => {
    const migrations = loadMigrations(folder({ "1_a": "A;", "2_b": "B;", "3_c": "C;" }));
    const plan = planMigrations(migrations, [row("1_a", "A;"), row("2_b", "B;", { finishedAt: null, rolledBackAt: new Date() })]);
    assert.deepEqual(plan.pending.map((m) => m.name), ["2_b", "3_c"]);
    assert.deepEqual(plan.warnings, []);
  });

  it("warns about a changed or unknown applied migration, and stops at a failed one", () => {
    const migrations = loadMigrations(folder({ "1_a": "A;" }));
    const plan = planMigrations(migrations, [row("1_a", "A changed;"), row("9_newer", "Z;")]);
    assert.deepEqual(plan.pending, []);
    assert.match(plan.warnings.join("\n"), /1_a was changed after it was applied/);
    assert.match(plan.warnings.join("\n"), /9_newer is applied to the database but not part of this release/);
    assert.throws(
      () => planMigrations(migrations, [row("1_a", "A;", { finishedAt: null })]),
      (err: unknown) => err instanceof MigrationError && /failed migration\(s\) in the database: 1_a/.test(err.message),
    );
  });

  it("applies each pending migration in a transaction under Prisma's advisory lock", async () => {
    const migrations = loadMigrations(folder({ "1_a": "CREATE TABLE a ();", "2_b": "CREATE TABLE b ();" }));
    const db = recorder([{ migration_name: "1_a", checksum: migrations[0]!.checksum, finished_at: new Date(), rolled_back_at: null, started_at: new Date() }]);
    const lines: string[] = [];
    const result = await migrate(db, migrations, { log: (l) => lines.push(l) });
    assert.deepEqual(result, { applied: ["2_b"], alreadyApplied: 1, warnings: [] });
    assert.deepEqual(db.log, [
      "SET lock_timeout =",
      "SELECT pg_advisory_lock($1)",
      'CREATE TABLE IF',
      'SELECT "migration_name", "checksum",',
      "BEGIN",
      "SET LOCAL lock_timeout",
      "CREATE TABLE b",
      'INSERT INTO "_prisma_migrations"',
      "COMMIT",
      "SELECT pg_advisory_unlock($1)",
    ]);
    assert.match(lines[0]!, /^applied 2_b \(\d+ ms\)$/);
  });

  it("rolls a failing migration back, records the attempt as rolled back, and unlocks", async () => {
    const migrations = loadMigrations(folder({ "1_bad": "CREATE TABLE oops (" }));
    const db = recorder([], "CREATE TABLE oops");
    await assert.rejects(
      () => migrate(db, migrations),
      /1_bad failed and was rolled back, nothing of it applied: boom in CREATE TABLE oops \(SQLSTATE 42601\)/,
    );
    assert.deepEqual(db.log.slice(-4), ["CREATE TABLE oops", "ROLLBACK", 'INSERT INTO "_prisma_migrations"', "SELECT pg_advisory_unlock($1)"]);
  });

  it("finds contracting statements, and allows what only expands", () => {
    assert.deepEqual(contractingStatements('ALTER TABLE "Reward" ADD COLUMN "description" TEXT;'), []);
    assert.deepEqual(contractingStatements(`ALTER TABLE "User" ADD COLUMN "tier" TEXT NOT NULL DEFAULT 'basic';`), []);
    assert.deepEqual(contractingStatements('CREATE INDEX "x" ON "User"("name"); -- DROP TABLE "User"'), []);
    for (const sql of [
      'DROP TABLE "Reward"',
      'ALTER TABLE "User" DROP COLUMN "name"',
      'ALTER TABLE "User" RENAME COLUMN "name" TO "fullName"',
      'ALTER TABLE "Reward" ALTER COLUMN "cost" SET DATA TYPE BIGINT',
      'ALTER TABLE "Reward" ALTER COLUMN "cost" TYPE BIGINT',
      'ALTER TABLE "User" ALTER COLUMN "email" SET NOT NULL',
      'ALTER TABLE "User" ADD COLUMN "tier" TEXT NOT NULL',
    ]) {
      assert.equal(contractingStatements(`${sql};`).length, 1, sql);
    }
  });

  it("the committed migrations load, and every one after the first only expands the schema", () => {
    const migrations = loadMigrations(migrationsDir({}));
    assert.ok(migrations.length >= 2);
    assert.equal(migrations[0]!.name.endsWith("_init"), true);
    for (const m of migrations.slice(1)) assert.deepEqual(contractingStatements(m.sql), [], m.name);
    assert.equal(newestMigration(migrationsDir({})), migrations.at(-1)!.name);
  });

  it("the first migration creates every model of the schema", () => {
    const [init] = loadMigrations(migrationsDir({}));
    for (const table of ["User", "PointsLedger", "Reward", "Redemption"]) {
      assert.match(init!.sql, new RegExp(`CREATE TABLE "${table}"`), table);
    }
    assert.match(init!.sql, /CREATE TYPE "LedgerKind" AS ENUM \('EARN', 'REDEEM', 'ADJUST'\)/);
  });
});
