/**
 * The agent's health endpoint: `/healthz` answers 200 while an SVID is served (`ready`, or
 * `degraded` when meshward could not renew it and the agent serves it until it expires) and 503
 * without a valid SVID (`not_ready`); `/metrics` is Prometheus text.
 */
import http from 'node:http';
import type { Registry } from '../lib/metrics.ts';
import type { AgentHealth } from './identity.ts';

export interface HealthServer {
  address: string;
  close(): Promise<void>;
}

export async function startHealthServer(listen: string, health: () => AgentHealth, registry: Registry): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/healthz') {
      const h = health();
      res.writeHead(h.state === 'not_ready' ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(h));
    } else if (url === '/metrics') {
      registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      }, () => {
        res.writeHead(500);
        res.end();
      });
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(listen.slice(i + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as { address: string; port: number };
  return {
    address: `${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
