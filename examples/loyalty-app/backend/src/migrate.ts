// `npm run db:migrate:deploy` (node dist/migrate.js): the release's migration step, run once in a
// one-off container of the new image before a deploy switches traffic. The demo keeps its data in
// memory, so there is no schema to change: the step checks that the release can build its store.
// MIGRATE_FAIL=1 makes it fail, so deploy tests can exercise "migration failed: abort".
import { loadConfig } from "./config.js";
import { seededStore } from "./store.js";

const config = loadConfig();
if (["1", "true", "yes"].includes((process.env.MIGRATE_FAIL ?? "").toLowerCase())) {
  process.stderr.write(`migrate ${config.version}: failing on purpose (MIGRATE_FAIL is set)\n`);
  process.exit(1);
}
const store = seededStore();
process.stdout.write(
  `migrate ${config.version} (${config.commit}): in-memory store, nothing to apply ` +
    `(${store.listRewards().length} rewards seeded)\n`,
);
