/**
 * What the bench's own minimal tus servers share (plain-server.ts, s3-hop-server.ts): the
 * answer with Tus-Resumable, and an http server on loopback that prints `<name> listening`,
 * answers 500 to a failed request and stops on SIGTERM.
 */
import http from 'node:http';

const TUS = { 'Tus-Resumable': '1.0.0' };

export function answer(res: http.ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...TUS, ...headers });
  res.end();
}

export function serveTiny(name: string, port: number, handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>): void {
  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) answer(res, 500);
      else res.destroy();
    });
  });
  // Same as tusgate and the bare @tus/server: no request timeout on long PATCH bodies.
  server.requestTimeout = 0;
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ msg: `${name} listening`, port })}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
