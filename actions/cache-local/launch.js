// The only JavaScript in ci-actions: a node20 action is the one way to get a `post:` step, which
// cache-local needs to save when the job ends (as actions/cache does). It runs the Python launcher
// and passes its exit code through; all logic is in the cache_local package.
const { spawnSync } = require("child_process");
const path = require("path");

module.exports = function launch(module) {
  const launcher = path.join(__dirname, "..", "..", "shared", "launch");
  const result = spawnSync("python3", [launcher, __dirname, module], { stdio: "inherit" });
  if (result.error) {
    console.log(`::error::cache-local: could not start python3 (${result.error.message}); ` +
      "the runner needs python3 3.11+ on PATH");
    process.exit(1);
  }
  process.exit(result.status === null ? 1 : result.status);
};
