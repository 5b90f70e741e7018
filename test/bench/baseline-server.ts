/**
 * The benchmark's baseline: bare @tus/server, no hooks, no gate, no Koa, on @tus/file-store
 * or, with BENCH_STORE=s3, on @tus/s3-store with the S3 client settings tusgate uses.
 * Started as a child process by test/bench/servers.ts. Environment: PORT, and BENCH_DIR
 * (file) or S3_ENDPOINT, S3_REGION, S3_BUCKET, S3_PART_SIZE and AWS credentials (s3).
 */
import http from 'node:http';
import { FileStore } from '@tus/file-store';
import { S3Store } from '@tus/s3-store';
import { Server } from '@tus/server';
import type { DataStore } from '@tus/utils';
import { s3ClientConfig } from '../../storage/s3-client.ts';

const port = Number(process.env.PORT);
const kind = process.env.BENCH_STORE ?? 'file';

function datastore(): DataStore | undefined {
  if (kind === 's3') {
    const bucket = process.env.S3_BUCKET;
    if (!bucket) return undefined;
    const client = s3ClientConfig({
      endpoint: process.env.S3_ENDPOINT,
      region: process.env.S3_REGION ?? 'us-east-1',
      forcePathStyle: true,
      checksumMode: 'WHEN_REQUIRED',
    });
    return new S3Store({ partSize: Number(process.env.S3_PART_SIZE ?? 8 * 1024 * 1024), s3ClientConfig: { ...client, bucket } });
  }
  const directory = process.env.BENCH_DIR;
  return directory ? new FileStore({ directory }) : undefined;
}

const store = datastore();
if (!store || !Number.isInteger(port)) {
  process.stderr.write('baseline-server: set PORT, and BENCH_DIR (file) or S3_BUCKET and S3_ENDPOINT (BENCH_STORE=s3)\n');
  process.exit(2);
}

const server = new Server({ path: '/files', datastore: store });
const httpServer = http.createServer(server.handle.bind(server));
// Same as tusgate: no request timeout on long PATCH bodies.
httpServer.requestTimeout = 0;
httpServer.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'baseline listening', port, store: kind })}\n`);
});
process.on('SIGTERM', () => httpServer.close(() => process.exit(0)));
