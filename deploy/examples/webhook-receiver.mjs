// A webhook receiver for tusgate, as an application would write one: it verifies the
// Standard Webhooks signature, ignores an event it has already handled (tusgate delivers
// at least once, with the same webhook-id on every retry), and answers 2xx once the event
// is safely handled. Run: WEBHOOK_SECRET=whsec_... node deploy/examples/webhook-receiver.mjs
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';

const webhook = new Webhook(process.env.WEBHOOK_SECRET);
const seen = new Set(); // use your database in a real application

createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    let event;
    try {
      event = webhook.verify(body, req.headers); // throws on a bad signature or a stale timestamp
    } catch {
      res.writeHead(400).end('bad signature');
      return;
    }
    const id = req.headers['webhook-id'];
    if (!seen.has(id)) {
      seen.add(id);
      const { type, data } = event;
      if (type === 'artifact.published') console.log(`${data.owner ?? 'anonymous'} published ${data.artifact.url} (${data.profile})`);
      else console.log(type, data.uploadId, data.error?.code ?? '');
    }
    res.writeHead(204).end();
  });
}).listen(Number(process.env.PORT ?? 4000), '127.0.0.1');
