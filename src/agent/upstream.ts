/**
 * The agent's calls to meshward: `IstioCertificateService/CreateCertificate` (gRPC) with a CSR,
 * and the HTTP API's public bundle and `POST /v1/svids/jwt`. The token is re-read from its file
 * on every call, so a rotated Kubernetes token (kubelet rewrites the file) is used at once.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { credentials, type Client, makeGenericClientConstructor, Metadata, type ServiceError } from '@grpc/grpc-js';
import { istioCaServiceDefinition } from '../ca/index.ts';
import { MeshwardError } from '../lib/errors.ts';
import { AgentError } from './errors.ts';

export interface UpstreamOptions {
  /** meshward's gRPC address, host:port. */
  grpcAddress: string;
  /** meshward's unary gRPC port (`serve --unary-grpc-addr`), host:port: CSRs go there when set. */
  unaryGrpcAddress?: string;
  /** meshward's HTTP API base URL (bundle, JWT-SVIDs); without it, bundles come from CreateCertificate only. */
  apiUrl?: string;
  tokenFile: string;
  /** PEM of the CA that signed meshward's server certificates (TLS); plaintext when absent and allowed. */
  caPem?: string;
  /** Plaintext to meshward: only with this explicit opt-in, and only to a loopback address. */
  plaintext?: boolean;
  timeoutMs?: number;
}

interface CaClient extends Client {
  CreateCertificate(req: object, md: Metadata, opts: { deadline: number }, cb: (err: ServiceError | null, res: { cert_chain: string[] }) => void): void;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  return (i > 0 ? address.slice(0, i) : address).replace(/^\[|\]$/g, '');
}

/** Refuses plaintext to anything but loopback, and neither TLS nor plaintext chosen. */
export function checkTransport(o: UpstreamOptions): void {
  if (o.caPem) return;
  if (!o.plaintext) throw new MeshwardError('INVALID_ARGUMENT', '--meshward-ca FILE is required (TLS to meshward); --plaintext is allowed for a loopback meshward only');
  const hosts = [hostOf(o.grpcAddress), ...(o.unaryGrpcAddress ? [hostOf(o.unaryGrpcAddress)] : []), ...(o.apiUrl ? [new URL(o.apiUrl).hostname.replace(/^\[|\]$/g, '')] : [])];
  for (const h of hosts) {
    const loopback = LOOPBACK.has(h) || (isIP(h) === 4 && h.startsWith('127.'));
    if (!loopback) throw new MeshwardError('INVALID_ARGUMENT', `--plaintext: ${h} is not a loopback address; use --meshward-ca FILE for TLS`);
  }
}

export class Upstream {
  readonly #o: UpstreamOptions;
  readonly #client: CaClient;

  constructor(o: UpstreamOptions) {
    checkTransport(o);
    this.#o = o;
    const Ctor = makeGenericClientConstructor(istioCaServiceDefinition(), 'IstioCertificateService');
    const creds = o.caPem ? credentials.createSsl(Buffer.from(o.caPem)) : credentials.createInsecure();
    this.#client = new Ctor(o.unaryGrpcAddress ?? o.grpcAddress, creds) as unknown as CaClient;
  }

  /** The token as it is in the file now. */
  token(): string {
    let text: string;
    try {
      text = readFileSync(this.#o.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new AgentError('AGENT_TOKEN_UNREADABLE', `cannot read the token file ${this.#o.tokenFile}: ${(err as Error).message}`);
    }
    if (!text) throw new AgentError('AGENT_TOKEN_UNREADABLE', `the token file ${this.#o.tokenFile} is empty`);
    return text;
  }

  /** Sends the CSR; returns the chain meshward answered (leaf first, root last). */
  createCertificate(csrPem: string): Promise<string[]> {
    const md = new Metadata();
    md.set('authorization', `Bearer ${this.token()}`);
    const deadline = Date.now() + (this.#o.timeoutMs ?? 10_000);
    return new Promise((resolve, reject) => {
      this.#client.CreateCertificate({ csr: csrPem }, md, { deadline }, (err, res) => {
        if (err) reject(new AgentError('AGENT_UPSTREAM', `CreateCertificate: ${err.details || err.message}`, { details: { grpcCode: err.code } }));
        else resolve(res.cert_chain ?? []);
      });
    });
  }

  get hasApi(): boolean {
    return this.#o.apiUrl !== undefined;
  }

  /** GET/POST on the HTTP API; returns the body, or throws AGENT_UPSTREAM with meshward's message. */
  request(method: 'GET' | 'POST', path: string, body?: unknown, bearer?: string): Promise<string> {
    if (!this.#o.apiUrl) throw new AgentError('AGENT_UPSTREAM', 'no meshward API address (--meshward-api URL) to fetch from');
    const url = new URL(path, this.#o.apiUrl.endsWith('/') ? this.#o.apiUrl : `${this.#o.apiUrl}/`);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json', ...(payload ? { 'content-type': 'application/json' } : {}), ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) };
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, { method, headers, timeout: this.#o.timeoutMs ?? 10_000, ...(url.protocol === 'https:' && this.#o.caPem ? { ca: this.#o.caPem } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 500) < 300) resolve(text);
          else reject(new AgentError('AGENT_UPSTREAM', `${method} ${url.pathname}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`, { details: { httpStatus: res.statusCode } }));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new AgentError('AGENT_UPSTREAM', `${method} ${url.pathname}: timed out`)));
      req.on('error', (err) => reject(err instanceof AgentError ? err : new AgentError('AGENT_UPSTREAM', `${method} ${url.pathname}: ${err.message}`)));
      req.end(payload);
    });
  }

  close(): void {
    this.#client.close();
  }
}
