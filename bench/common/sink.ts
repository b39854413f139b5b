// The listening half of both loopback sinks (bench/s3/sink.ts, bench/oci/sink.ts): a node:http server
// on 127.0.0.1 that announces its port and stops on SIGTERM or SIGINT.

import http from 'node:http';

/** Serves `handler` on 127.0.0.1:`port` (0: any free port); prints `listening <port>` on stdout when ready. */
export function serveLoopback(port: number, handler: http.RequestListener): http.Server {
  const server = http.createServer(handler);
  // Match a typical server's keep-alive: never close an idle connection the load generator may reuse.
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected server address');
    process.stdout.write(`listening ${address.port}\n`);
  });
  const stop = (): void => {
    server.close();
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return server;
}
