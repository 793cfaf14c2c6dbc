// `npm run db:migrate:deploy` (node dist/migrate.js): the release's migration step, run once in a
// one-off container of the new image before a deploy switches traffic. Applies the committed
// migrations (prisma/migrations) to DATABASE_URL with src/migrator.ts; exit 0 when the database is
// up to date, 1 when a migration failed (it was rolled back), 2 for bad configuration.
// MIGRATE_FAIL=1 makes it fail before connecting, so deploy tests can exercise "migration failed: abort".
import pg from "pg";
import { migrationsDir, packageVersion } from "./config.js";
import { loadMigrations, migrate, MigrationError } from "./migrator.js";

const env = process.env;
const version = env.APP_VERSION?.trim() || packageVersion();
const commit = env.GIT_SHA?.trim() || "unknown";
function say(line: string): void {
  process.stdout.write(`migrate ${version}: ${line}\n`);
}

function fail(line: string, code: number): never {
  process.stderr.write(`migrate ${version}: ${line}\n`);
  process.exit(code);
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function msFrom(name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 3_600_000) fail(`${name} must be milliseconds (0-3600000), got '${raw}'`, 2);
  return value;
}

const CONNECT_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "57P03"]);

/** A connection, retried while the server is not up yet (a database container still starting). */
async function connect(url: string, withinMs: number): Promise<pg.Client> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url, application_name: "loyalty-app-migrate", connectionTimeoutMillis: 5_000 });
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => {});
      const code = (err as { code?: string }).code ?? "";
      if (!CONNECT_ERRORS.has(code) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function main(): Promise<void> {
  if (["1", "true", "yes"].includes((env.MIGRATE_FAIL ?? "").toLowerCase())) fail("failing on purpose (MIGRATE_FAIL is set)", 1);
  const url = env.DATABASE_URL?.trim();
  if (!url) fail("DATABASE_URL is not set: give the postgres://user:password@host:port/db to migrate", 2);
  const dir = migrationsDir(env);
  const migrations = (() => {
    try {
      return loadMigrations(dir);
    } catch (err) {
      return fail(message(err), 2);
    }
  })();
  const client = await connect(url, msFrom("MIGRATE_CONNECT_TIMEOUT_MS", 30_000)).catch((err: unknown) =>
    fail(`cannot connect to the database: ${message(err)}`, 1),
  );
  say(`${migrations.length} migration(s) in ${dir}, database ${client.host}:${client.port}/${client.database} (commit ${commit})`);
  try {
    const result = await migrate(client, migrations, {
      lockTimeoutMs: msFrom("MIGRATE_LOCK_TIMEOUT_MS", 10_000),
      waitMs: msFrom("MIGRATE_WAIT_MS", 60_000),
      log: say,
    });
    say(
      result.applied.length === 0
        ? `nothing to apply: all ${result.alreadyApplied} migration(s) are applied`
        : `applied ${result.applied.length} migration(s), ${result.alreadyApplied} were applied before`,
    );
  } catch (err) {
    await client.end().catch(() => {});
    fail(err instanceof MigrationError ? err.message : `failed: ${message(err)}`, 1);
  }
  await client.end();
}

await main();
