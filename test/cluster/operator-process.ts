// Runs the operator as its own process against the local control plane, as `npm run operator` does, so tests
// can kill it like a crashed pod. Its JSON log lines are kept for assertions and failure messages.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { waitFor } from '../cluster/wait-for.ts';

const repoRoot = join(import.meta.dirname, '../..');

export interface LogLine {
  msg: string;
  level: number;
  [field: string]: unknown;
}

export class OperatorProcess {
  readonly logs: LogLine[] = [];
  httpsPort = 0;
  reportPort = 0;
  healthPort = 0;
  private readonly child: ChildProcess;
  private exited = false;

  /** dev: development mode (the default); off, the operator runs as the chart deploys it, given a kubeconfig. */
  constructor(identity: string, kubeconfig: string, extraArgs: string[] = [], dev = true) {
    this.child = spawn(
      process.execPath,
      [
        // As the image runs it (images/operator.Dockerfile).
        '--max-semi-space-size=16',
        join(repoRoot, 'operator/src/main.ts'),
        ...(dev ? ['--dev'] : []),
        '--identity',
        identity,
        '--https-port',
        '0',
        '--report-port',
        '0',
        '--health-port',
        '0',
        // Short periods, so that the tests see failover and not-reporting sidecars in seconds.
        '--lease-duration-seconds',
        '4',
        '--report-interval-seconds',
        '2',
        '--report-grace-seconds',
        '4',
        '--certificate-check-seconds',
        '2',
        // A replaced CA is served after 6 s and dropped from the bundle after 12 (a kubelet needs minutes; kwok
        // pods mount nothing).
        '--ca-rollover-seconds',
        '6',
        ...extraArgs,
      ],
      {
        env: { ...process.env, KUBECONFIG: kubeconfig, LOG_LEVEL: 'debug' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ msg: line, level: 50 });
        }
      });
    }
    this.child.on('exit', () => {
      this.exited = true;
      process.off('exit', killChild);
    });
    // Never leave an operator behind, holding the Lease, when the test or benchmark process dies.
    const killChild = (): void => {
      this.child.kill('SIGKILL');
    };
    process.on('exit', killChild);
  }

  async started(): Promise<this> {
    const line = await waitFor(
      'the operator to start',
      () => {
        if (this.exited) throw new Error(`the operator exited:\n${this.tail()}`);
        return Promise.resolve(this.logs.find((l) => l.msg === 'operator started'));
      },
      90_000,
    );
    this.httpsPort = Number(line.httpsPort);
    this.reportPort = Number(line.reportPort);
    this.healthPort = Number(line.healthPort);
    return this;
  }

  /** The health port, known as soon as the health server listens (before the start has finished). */
  async healthServer(): Promise<number> {
    const line = await waitFor('the health server to listen', () => {
      if (this.exited) throw new Error(`the operator exited:\n${this.tail()}`);
      return Promise.resolve(this.logs.find((l) => l.msg === 'health server listening'));
    });
    this.healthPort = Number(line.healthPort);
    return this.healthPort;
  }

  isLeaderInLogs(): boolean {
    const changes = this.logs.filter((l) => l.msg === 'became leader' || l.msg === 'stopped leading');
    return changes.at(-1)?.msg === 'became leader';
  }

  tail(lines = 30): string {
    return this.logs
      .slice(-lines)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  /** The process id, for benchmarks that read its memory from /proc. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** SIGKILL: no goodbye, no Lease release, as when a node dies. */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
