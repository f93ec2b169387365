// Sidecars report through the operator's Service, so each report lands on whichever replica the Service picks.
// Only the leader reconciles, but any replica may lead next: the replica that takes a report from a sidecar
// passes it on, as it came (the sidecar's own token and body), to every other replica, which checks it the same
// way. So every replica holds every phone's latest report, and a new leader starts with what the old one knew.

import { Agent, request } from 'node:https';
import type { Logger } from 'pino';

/** Marks a report passed on by another replica: it is not passed on again. */
export const RELAYED_HEADER = 'x-cloudphone-relayed';

export interface ReportRelayOptions {
  /** Addresses (pod IPs) of the other replicas, as the pod cache knows them now. */
  peers: () => string[];
  port: number;
  path: string;
  /** The CA that signed every replica's serving certificate, and the name that certificate carries. */
  caPem: () => string;
  serverName: string;
  log: Logger;
  onResult: (result: 'sent' | 'refused' | 'failed') => void;
  timeoutMs?: number;
}

export class ReportRelay {
  private readonly o: Required<ReportRelayOptions>;
  private agent: Agent | undefined;
  private agentCa = '';

  constructor(options: ReportRelayOptions) {
    this.o = { timeoutMs: 2_000, ...options };
  }

  /** Passes a report on to every other replica; never waits for them and never throws. */
  forward(authorization: string, body: Buffer): void {
    for (const peer of this.o.peers()) this.send(peer, authorization, body);
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  private send(peer: string, authorization: string, body: Buffer): void {
    const req = request(
      {
        host: peer,
        port: this.o.port,
        path: this.o.path,
        method: 'POST',
        agent: this.currentAgent(),
        servername: this.o.serverName,
        headers: {
          authorization,
          'content-type': 'application/json',
          'content-length': body.length,
          [RELAYED_HEADER]: '1',
        },
        timeout: this.o.timeoutMs,
      },
      (res) => {
        res.resume();
        const ok = res.statusCode === 200;
        this.o.onResult(ok ? 'sent' : 'refused');
        // A peer that has not seen the pod yet refuses it (403); the sidecar's next report gets there.
        if (!ok) this.o.log.debug({ peer, status: res.statusCode }, 'a replica refused a relayed report');
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) => {
      this.o.onResult('failed');
      this.o.log.debug({ peer, error: error.message }, 'could not relay a report');
    });
    req.end(body);
  }

  /** One keep-alive agent per CA: a renewed CA gets a fresh agent. */
  private currentAgent(): Agent {
    const ca = this.o.caPem();
    if (!this.agent || ca !== this.agentCa) {
      this.agent?.destroy();
      this.agent = new Agent({ keepAlive: true, maxSockets: 4, ca, minVersion: 'TLSv1.2' });
      this.agentCa = ca;
    }
    return this.agent;
  }
}
