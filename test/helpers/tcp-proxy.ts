/**
 * A loopback TCP proxy that can cut every connection and refuse new ones (an outage of what is
 * behind it), or lose the one reply to a given request (a commit whose acknowledgement never
 * arrives: the server did the work, the client cannot know).
 */
import net from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** Destroys open connections and refuses new ones until `restore`. */
  cut(): void;
  restore(): void;
  /**
   * Once: the next client chunk containing `marker` is forwarded, and the server's reply to it is
   * dropped and that connection destroyed. Resolves when it has happened.
   */
  loseReplyTo(marker: string): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let down = false;
  let armed: { marker: Buffer; done: () => void } | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    let losing: (() => void) | undefined;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      if (armed && chunk.includes(armed.marker)) {
        losing = armed.done;
        armed = undefined;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (losing) {
        client.destroy();
        upstream.destroy();
        losing();
        return;
      }
      client.write(chunk);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
    loseReplyTo: (marker) => new Promise<void>((done) => {
      armed = { marker: Buffer.from(marker), done };
    }),
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}
