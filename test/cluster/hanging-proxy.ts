// A TCP proxy in front of the apiserver that can hang: while hung, every connection through it, open or new, is
// held open and carries nothing either way, as when a network path dies without a reset. heal() drops the
// connections held during the hang (as their peers would time them out) and forwards again. A real fault on a
// real connection: TLS runs end to end through it, the proxy never sees the traffic.

import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

export class HangingProxy {
  private readonly server: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly held = new Set<Socket>();
  private hung = false;
  port = 0;

  private readonly targetHost: string;
  private readonly targetPort: number;

  constructor(targetHost: string, targetPort: number) {
    this.targetHost = targetHost;
    this.targetPort = targetPort;
    this.server = createServer((client) => {
      client.on('error', () => undefined);
      if (this.hung) {
        client.pause();
        this.held.add(client);
        return;
      }
      const upstream = connect(this.targetPort, this.targetHost);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const forget = (): void => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', forget);
      upstream.on('close', forget);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this;
  }

  /** Nothing passes any more, on open connections or new ones; nothing is closed either. */
  hang(): void {
    this.hung = true;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
      this.held.add(client);
      this.held.add(upstream);
    }
  }

  /** Connections held during the hang are dropped; new ones are forwarded. */
  heal(): void {
    this.hung = false;
    for (const socket of this.held) socket.destroy();
    this.held.clear();
  }

  async close(): Promise<void> {
    this.heal();
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    const closed = once(this.server, 'close');
    this.server.close();
    await closed;
  }
}
