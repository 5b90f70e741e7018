/**
 * The benchmark's baseline: bare @tus/server on @tus/file-store, no hooks, no gate, no Koa.
 * Started as a child process by test/bench/servers.ts: PORT and BENCH_DIR from the environment.
 */
import http from 'node:http';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const directory = process.env.BENCH_DIR;
const port = Number(process.env.PORT);
if (!directory || !Number.isInteger(port)) {
  process.stderr.write('baseline-server: set PORT and BENCH_DIR\n');
  process.exit(2);
}

const server = new Server({ path: '/files', datastore: new FileStore({ directory }) });
const httpServer = http.createServer(server.handle.bind(server));
// Same as tusgate: no request timeout on long PATCH bodies.
httpServer.requestTimeout = 0;
httpServer.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'baseline listening', port })}\n`);
});
process.on('SIGTERM', () => httpServer.close(() => process.exit(0)));
