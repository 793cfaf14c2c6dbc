// The only JavaScript in ci-actions. A node24 action is the one way to get a `post:` step (cache-local
// saves when the job ends, as actions/cache does) or outputs named at run time (build-images sets one
// per service). The shim runs the Python launcher for the action's folder and passes its exit code
// through; all logic is in the action's Python package.
const { spawnSync } = require("child_process");
const path = require("path");

module.exports = function launch(actionDir, module) {
  const launcher = __dirname;
  const result = spawnSync("python3", [launcher, actionDir, module], { stdio: "inherit" });
  if (result.error) {
    console.log(`::error::${path.basename(actionDir)}: could not start python3 (${result.error.message}); ` +
      "the runner needs python3 3.11+ on PATH");
    process.exit(1);
  }
  process.exit(result.status === null ? 1 : result.status);
};
