/** A TCP proxy on loopback that a test can cut (every connection dropped, new ones refused) and restore on the same port. */
import net from 'node:net';

export interface TcpProxy {
  /** host:port of the proxy. */
  port: number;
  /** Connections clients made to the proxy since it started. */
  connections(): number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const open = (port: number): Promise<net.Server> =>
    new Promise((resolve, reject) => {
      const server = net.createServer((client) => {
        connections += 1;
        const upstream = net.connect(targetPort, targetHost);
        track(client);
        track(upstream);
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve(server));
    });
  const stop = (server: net.Server | undefined) =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
    });
  let server: net.Server | undefined = await open(0);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
  const { port } = address;
  return {
    port,
    connections: () => connections,
    async cut() {
      const closing = server;
      server = undefined;
      await stop(closing);
    },
    async restore() {
      server ??= await open(port);
    },
    async close() {
      const closing = server;
      server = undefined;
      await stop(closing);
    },
  };
}
