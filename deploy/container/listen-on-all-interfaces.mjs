// Preload for deploy/examples/webhook-receiver.mjs in a container (deploy/compose.yaml):
//
//   node --import ./deploy/container/listen-on-all-interfaces.mjs deploy/examples/webhook-receiver.mjs
//
// The example listens on 127.0.0.1, right for a receiver beside tusgate on one host. In a
// container of its own, loopback is the container's alone and the tusgate containers could not
// reach it, so this turns a listen on 127.0.0.1 into one on LISTEN_HOST (0.0.0.0 by default).
// Nothing else changes; the example itself stays as an application would write it.
import net from 'node:net';

const host = process.env.LISTEN_HOST || '0.0.0.0';
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && args[1] === '127.0.0.1') args[1] = host;
  else if (args[0] && typeof args[0] === 'object' && args[0].host === '127.0.0.1') args[0] = { ...args[0], host };
  return listen.apply(this, args);
};
