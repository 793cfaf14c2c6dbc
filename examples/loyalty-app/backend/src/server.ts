// Entry point: `node dist/server.js`. Listens on HOST:PORT and stops gracefully on SIGTERM/SIGINT.
import { createServer } from "node:http";
import { createApp } from "./app.js";
import { loadConfig } from "./config.js";
import { createServices } from "./services.js";
import { closeGracefully } from "./shutdown.js";

const log = (line: string): void => {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
};

let config;
try {
  config = loadConfig();
} catch (err) {
  process.stderr.write(`loyalty-app-backend: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}

const services = await createServices(config, log);
const server = createServer(
  createApp(services, {
    version: config.version,
    commit: config.commit,
    forceUnhealthy: config.forceUnhealthy,
    corsOrigins: config.corsOrigins,
    log: config.logRequests ? log : undefined,
  }),
);
server.keepAliveTimeout = 5_000;

server.on("error", (err) => {
  process.stderr.write(`loyalty-app-backend: cannot listen on ${config.host}:${config.port}: ${err.message}\n`);
  process.exit(1);
});

server.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  log(`listening on http://${config.host}:${port} (version ${config.version}, commit ${config.commit}; data: ${services.describe})`);
  if (config.crashAfterMs > 0) {
    setTimeout(() => {
      log(`crashing on purpose (CRASH_AFTER_MS=${config.crashAfterMs})`);
      process.exit(70);
    }, config.crashAfterMs).unref();
  }
});

let stopping = false;
const stop = (signal: NodeJS.Signals): void => {
  if (stopping) return;
  stopping = true;
  log(`${signal} received: draining (up to ${config.shutdownTimeoutMs} ms)`);
  closeGracefully(server, config.shutdownTimeoutMs).then(
    async ({ graceful }) => {
      await services.close();
      log(graceful ? "stopped" : "stopped after the drain timeout: open requests were cut");
      process.exit(graceful ? 0 : 1);
    },
    (err: unknown) => {
      process.stderr.write(`loyalty-app-backend: shutdown failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
