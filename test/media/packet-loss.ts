// Real packet loss on the UDP port a sidecar's WebRTC traffic uses (webrtc.udpPort: one port for all ICE),
// in both directions, with nftables: each packet from or to that port is dropped with the given probability
// (numgen random), and counters say how many went and how many were dropped. tc netem would be the usual tool,
// but this kernel has no netem (nor any other qdisc module); its nftables has numgen. Needs root (or
// CAP_NET_ADMIN) and Debian's nftables package, which scripts/setup.sh installs.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface LossCounts {
  toViewer: number;
  toViewerDropped: number;
  fromViewer: number;
  fromViewerDropped: number;
}

async function nft(args: string[], input?: string): Promise<string> {
  const child = run('nft', args, { encoding: 'utf8' });
  if (input !== undefined) child.child.stdin?.end(input);
  try {
    return (await child).stdout;
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`nft ${args.join(' ')} failed (needs Debian's nftables and root): ${detail}`);
  }
}

export class PacketLoss {
  readonly #table: string;

  private constructor(table: string) {
    this.#table = table;
  }

  /** Drops percent % of the UDP packets from and to port, until remove(). */
  static async apply(port: number, percent: number): Promise<PacketLoss> {
    const table = `cloudphone_loss_${String(port)}`;
    const ruleset = [
      `table inet ${table} {`,
      '  counter toViewer {}',
      '  counter toViewerDropped {}',
      '  counter fromViewer {}',
      '  counter fromViewerDropped {}',
      '  chain out {',
      '    type filter hook output priority 0; policy accept;',
      `    udp sport ${String(port)} counter name toViewer`,
      `    udp sport ${String(port)} numgen random mod 100 < ${String(percent)} counter name toViewerDropped drop`,
      `    udp dport ${String(port)} counter name fromViewer`,
      `    udp dport ${String(port)} numgen random mod 100 < ${String(percent)} counter name fromViewerDropped drop`,
      '  }',
      '}',
      '',
    ].join('\n');
    await nft(['-f', '-'], ruleset);
    return new PacketLoss(table);
  }

  async counts(): Promise<LossCounts> {
    const listing = JSON.parse(await nft(['-j', 'list', 'counters', 'table', 'inet', this.#table])) as {
      nftables: { counter?: { name: string; packets: number } }[];
    };
    const packets = (name: string): number =>
      listing.nftables.find((entry) => entry.counter?.name === name)?.counter?.packets ?? 0;
    return {
      toViewer: packets('toViewer'),
      toViewerDropped: packets('toViewerDropped'),
      fromViewer: packets('fromViewer'),
      fromViewerDropped: packets('fromViewerDropped'),
    };
  }

  async remove(): Promise<void> {
    await nft(['delete', 'table', 'inet', this.#table]);
  }
}
