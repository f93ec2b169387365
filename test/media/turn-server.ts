// Debian's coturn as the TURN server viewers relay through, in the TURN REST mode (use-auth-secret): it takes a
// user name "<expiry>:<anything>" with credential base64(HMAC-SHA1(secret, user name)) until the expiry. On
// loopback only; relaying to loopback peers is allowed because the sidecar is one.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { waitUntil } from '../cluster/wait-for.ts';
import { freeUdpPort, tempDir } from './media-peers.ts';

export const TURNSERVER = '/usr/bin/turnserver';

export class TurnServer {
  readonly port: number;
  readonly realm = 'cloudphone.test';
  #log = '';
  readonly #child: ChildProcess;
  readonly #dir = tempDir('cloudphone-coturn-');

  private constructor(port: number, secret: string) {
    this.port = port;
    this.#child = spawn(
      TURNSERVER,
      [
        '-n', // no configuration file: everything is on this line
        '--listening-ip=127.0.0.1',
        '--relay-ip=127.0.0.1',
        `--listening-port=${String(port)}`,
        '--min-port=49400',
        '--max-port=49600',
        '--use-auth-secret',
        `--static-auth-secret=${secret}`,
        `--realm=${this.realm}`,
        '--allow-loopback-peers',
        '--no-tls',
        '--no-dtls',
        '--no-cli',
        '--no-tcp-relay',
        `--userdb=${join(this.#dir.path, 'turndb')}`,
        `--pidfile=${join(this.#dir.path, 'turnserver.pid')}`,
        '--log-file=stdout',
        '--simple-log',
        '--verbose',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    for (const stream of [this.#child.stdout, this.#child.stderr])
      stream?.on('data', (chunk: Buffer) => {
        this.#log += chunk.toString();
      });
  }

  static async start(secret: string): Promise<TurnServer> {
    const server = new TurnServer(await freeUdpPort(), secret);
    await waitUntil('coturn listening', () => /listener opened on|Total General servers/i.test(server.#log));
    return server;
  }

  /** What coturn printed (its log names each user it allocated for, and each refusal). */
  get log(): string {
    return this.#log;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null) {
      this.#child.kill('SIGTERM');
      await once(this.#child, 'exit');
    }
    this.#dir.remove();
  }
}
