// Graceful stop for an http.Server: stop accepting, let in-flight requests finish, then resolve.
import type { Server } from "node:http";

export interface CloseResult {
  /** False when the timeout hit and open connections were cut. */
  graceful: boolean;
}

export function closeGracefully(server: Server, timeoutMs: number, pollMs = 50): Promise<CloseResult> {
  return new Promise((resolve, reject) => {
    let timedOut = false;
    // A keep-alive socket that finishes its in-flight request turns idle; close it then, rather than
    // waiting for keepAliveTimeout. (close() itself only closes the sockets idle at that moment.)
    const sweep = setInterval(() => server.closeIdleConnections(), pollMs);
    const deadline = setTimeout(() => {
      timedOut = true;
      server.closeAllConnections();
    }, timeoutMs);
    server.close((err) => {
      clearInterval(sweep);
      clearTimeout(deadline);
      if (err) reject(err);
      else resolve({ graceful: !timedOut });
    });
    server.closeIdleConnections();
  });
}
