// A small migrator for the committed Prisma migrations (prisma/migrations/<name>/migration.sql), over `pg`.
//
// `prisma migrate deploy` needs Prisma's native schema engine, which the CLI downloads on first use: it
// cannot run offline (see the README). This applies the same files the same way, and keeps the same
// books, so either tool can take over from the other:
// - migrations run in name order, each in its own transaction (statement and row commit together, or
//   neither), under Prisma's advisory lock (two migrators never interleave);
// - each applied migration is a row of `_prisma_migrations` (Prisma's own table and columns), with the
//   sha256 of its file as checksum; a failed one leaves a row with `rolled_back_at` set and the error in
//   `logs`, which Prisma too reads as "not applied";
// - running it again applies nothing (idempotent); a row Prisma left failed (finished_at and
//   rolled_back_at both empty) stops it, as it stops `prisma migrate deploy` (P3009).
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface AppliedMigration {
  name: string;
  checksum: string;
  finishedAt: Date | null;
  rolledBackAt: Date | null;
  startedAt: Date;
}

export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationError";
  }
}

/** Prisma's advisory lock key for migrations (the schema engine takes the same one). */
export const PRISMA_LOCK_KEY = 72707369;

export const MIGRATIONS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export function checksum(sql: string): string {
  return createHash("sha256").update(sql, "utf8").digest("hex");
}

/** The migrations in `dir`, in the order they apply (by folder name, as Prisma orders them). */
export function loadMigrations(dir: string): Migration[] {
  if (!existsSync(dir)) throw new MigrationError(`no migrations folder at ${dir}`);
  const names = readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory())
    .sort();
  return names.map((name) => {
    const file = join(dir, name, "migration.sql");
    if (!existsSync(file)) throw new MigrationError(`migration ${name} has no migration.sql (${file})`);
    const sql = readFileSync(file, "utf8");
    return { name, sql, checksum: checksum(sql) };
  });
}

export interface MigrationPlan {
  pending: Migration[];
  warnings: string[];
}

/** What to apply, given what the database records; throws when a failed migration blocks the way. */
export function planMigrations(migrations: readonly Migration[], applied: readonly AppliedMigration[]): MigrationPlan {
  const warnings: string[] = [];
  const failed = applied.filter((a) => a.finishedAt === null && a.rolledBackAt === null);
  if (failed.length > 0) {
    const names = failed.map((f) => `${f.name} (started ${f.startedAt.toISOString()})`).join(", ");
    throw new MigrationError(
      `failed migration(s) in the database: ${names}. Fix the database, then mark it with ` +
        "`prisma migrate resolve --rolled-back <name>` (or --applied) before migrating again",
    );
  }
  const done = new Map<string, AppliedMigration>();
  for (const a of applied) if (a.finishedAt !== null && a.rolledBackAt === null) done.set(a.name, a);
  const known = new Set(migrations.map((m) => m.name));
  for (const name of done.keys()) {
    if (!known.has(name)) warnings.push(`${name} is applied to the database but not part of this release (a newer release's?)`);
  }
  const pending: Migration[] = [];
  for (const m of migrations) {
    const row = done.get(m.name);
    if (row === undefined) pending.push(m);
    else if (row.checksum !== m.checksum) warnings.push(`${m.name} was changed after it was applied (checksum differs); not applied again`);
  }
  return { pending, warnings };
}

export interface MigrateOptions {
  /** How long one migration's statements may wait for a table lock held by live traffic (ms). */
  lockTimeoutMs?: number;
  /** How long to wait for another migrator holding the advisory lock (ms). */
  waitMs?: number;
  log?: (line: string) => void;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: number;
  warnings: string[];
}

async function readApplied(db: Queryable): Promise<AppliedMigration[]> {
  const { rows } = await db.query(
    `SELECT "migration_name", "checksum", "finished_at", "rolled_back_at", "started_at"
       FROM "_prisma_migrations" ORDER BY "started_at", "migration_name"`,
  );
  return rows.map((r) => ({
    name: String(r.migration_name),
    checksum: String(r.checksum),
    finishedAt: (r.finished_at as Date | null) ?? null,
    rolledBackAt: (r.rolled_back_at as Date | null) ?? null,
    startedAt: r.started_at as Date,
  }));
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { code?: string; position?: string };
  return `${e.message}${e.code ? ` (SQLSTATE ${e.code}${e.position ? `, at character ${e.position}` : ""})` : ""}`;
}

/** Apply the pending migrations over one connection (a pg.Client: the advisory lock is per session). */
export async function migrate(db: Queryable, migrations: readonly Migration[], options: MigrateOptions = {}): Promise<MigrateResult> {
  const log = options.log ?? (() => {});
  const waitMs = options.waitMs ?? 60_000;
  const lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  await db.query(`SET lock_timeout = ${Math.max(1, Math.round(waitMs))}`);
  try {
    await db.query("SELECT pg_advisory_lock($1)", [PRISMA_LOCK_KEY]);
  } catch (err) {
    throw new MigrationError(`another migration holds the lock; waited ${Math.round(waitMs / 1000)} s (${errorText(err)})`);
  }
  try {
    await db.query(MIGRATIONS_TABLE_DDL);
    const plan = planMigrations(migrations, await readApplied(db));
    plan.warnings.forEach((w) => log(`warning: ${w}`));
    const applied: string[] = [];
    for (const m of plan.pending) {
      const started = new Date();
      await db.query("BEGIN");
      try {
        await db.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
        await db.query(m.sql);
        await db.query(
          `INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name", "logs", "started_at", "applied_steps_count")
           VALUES ($1, $2, clock_timestamp(), $3, NULL, $4, 1)`,
          [randomUUID(), m.checksum, m.name, started],
        );
        await db.query("COMMIT");
      } catch (err) {
        await db.query("ROLLBACK").catch(() => {});
        const why = errorText(err);
        await db
          .query(
            `INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at", "applied_steps_count")
             VALUES ($1, $2, NULL, $3, $4, clock_timestamp(), $5, 0)`,
            [randomUUID(), m.checksum, m.name, why, started],
          )
          .catch(() => {});
        throw new MigrationError(`${m.name} failed and was rolled back, nothing of it applied: ${why}`);
      }
      const ms = Date.now() - started.getTime();
      log(`applied ${m.name} (${ms} ms)`);
      applied.push(m.name);
    }
    return { applied, alreadyApplied: migrations.length - plan.pending.length, warnings: plan.warnings };
  } finally {
    await db.query("SELECT pg_advisory_unlock($1)", [PRISMA_LOCK_KEY]).catch(() => {});
  }
}

/** Statements in `sql` that would break the release before it (run on the migrated schema until the
 * switch, and after a rollback): dropping or renaming, changing a column's type, making one required,
 * or adding a required column without a default. Blue-green needs migrations to only expand. */
export function contractingStatements(sql: string): string[] {
  const code = sql.replace(/--[^\n]*/g, "").replace(/\/\*[\s\S]*?\*\//g, "");
  const found: string[] = [];
  for (const raw of code.split(";")) {
    const stmt = raw.replace(/\s+/g, " ").trim();
    if (stmt === "") continue;
    const upper = stmt.toUpperCase();
    const addsRequired = /\bADD (COLUMN )?("[^"]+"|\w+) [^,]*\bNOT NULL\b/.test(upper) && !/\bDEFAULT\b/.test(upper);
    if (
      /^DROP (TABLE|TYPE|SCHEMA|VIEW)\b/.test(upper) ||
      /\bDROP COLUMN\b/.test(upper) ||
      /\bRENAME\b/.test(upper) ||
      /\bALTER (COLUMN )?("[^"]+"|\w+) (SET DATA )?TYPE\b/.test(upper) ||
      /\bSET NOT NULL\b/.test(upper) ||
      addsRequired
    ) {
      found.push(stmt);
    }
  }
  return found;
}
