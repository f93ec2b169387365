// The real node's pod network as a pod sees it: cluster DNS and Services work, and nothing leaves the machine.
// Nothing here sends a packet anywhere but to this machine and to network namespaces this test makes: the
// "outside" is a namespace of its own (10.78.0.2), reached from the host through a veth pair.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { kubectl, repoRoot, useTestNamespace, waitFor } from '../cluster/test-cluster.ts';
import { localImages, realNode } from './real-node.ts';

const namespace = useTestNamespace('e2e-net');
const suffix = randomBytes(2).toString('hex');
const OUTSIDE_NS = `cpguard-out-${suffix}`;
const FAKE_POD_NS = `cpguard-pod-${suffix}`;
const OUTSIDE_IP = '10.78.0.2';
const NODE = join(repoRoot, 'node_modules/.bin/node');

function sh(...args: string[]): string {
  return execFileSync(args[0] ?? '', args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A UDP listener in a network namespace: the datagrams it got, as text. */
class UdpListener {
  readonly received: string[] = [];
  readonly #child: ChildProcess;

  constructor(netns: string, address: string, port: number) {
    const script = `require('node:dgram').createSocket('udp4').on('message', (m) => console.log(String(m)))
      .bind(${String(port)}, '${address}', () => console.log('listening'))`;
    this.#child = spawn('ip', ['netns', 'exec', netns, NODE, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#child.stdout?.on('data', (chunk: Buffer) =>
      this.received.push(...chunk.toString().split('\n').filter(Boolean)),
    );
  }

  stop(): void {
    this.#child.kill('SIGKILL');
  }
}

function sendUdp(netns: string | undefined, address: string, port: number, text: string): void {
  const script = `const s = require('node:dgram').createSocket('udp4');
    s.send('${text}', ${String(port)}, '${address}', (e) => { if (e) console.error(e.code); s.close(); })`;
  execFileSync(netns ? 'ip' : NODE, netns ? ['netns', 'exec', netns, NODE, '-e', script] : ['-e', script]);
}

/** The kernel's counter of packets the node's forward guard dropped as leaving the bridge. */
function guardDrops(): number {
  const rules = sh('nft', 'list', 'table', 'inet', 'cloudphone_node_guard');
  const line = rules.split('\n').find((l) => l.includes("a pod's packet may not leave the machine"));
  return Number(/counter packets (\d+)/.exec(line ?? '')?.[1] ?? Number.NaN);
}

/** Runs a script in a pod on the real node (the sidecar image has Node.js) and returns what it printed. */
async function runInPod(name: string, script: string): Promise<string> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: namespace() },
    spec: {
      ...realNode.placement,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [
        { name: 'probe', image: localImages.sidecar, imagePullPolicy: 'Never', command: ['node', '-e', script] },
      ],
    },
  };
  execFileSync(join(repoRoot, '.cache/bin/kubectl'), ['--kubeconfig', inject('kubeconfig'), 'apply', '-f', '-'], {
    input: stringify(pod),
  });
  await waitFor(
    `pod ${name} to finish`,
    () => {
      const phase = kubectl('get', 'pod', name, '-n', namespace(), '-o', 'jsonpath={.status.phase}');
      return Promise.resolve(phase === 'Succeeded' || phase === 'Failed' ? phase : undefined);
    },
    90_000,
  );
  return kubectl('logs', name, '-n', namespace());
}

describe("the real node's pod network", () => {
  beforeAll(() => {
    // The outside: a namespace behind a veth pair on the host, like a machine on another network.
    sh('ip', 'netns', 'add', OUTSIDE_NS);
    sh('ip', 'link', 'add', `cpgo-${suffix}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', OUTSIDE_NS);
    sh('ip', 'addr', 'add', '10.78.0.1/24', 'dev', `cpgo-${suffix}`);
    sh('ip', 'link', 'set', `cpgo-${suffix}`, 'up');
    sh('ip', 'netns', 'exec', OUTSIDE_NS, 'ip', 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0');
    sh('ip', 'netns', 'exec', OUTSIDE_NS, 'ip', 'link', 'set', 'eth0', 'up');
    sh('ip', 'netns', 'exec', OUTSIDE_NS, 'ip', 'link', 'set', 'lo', 'up');
    sh('ip', 'netns', 'exec', OUTSIDE_NS, 'ip', 'route', 'add', 'default', 'via', '10.78.0.1');
    // A stand-in for a pod that does what no real pod can (it has a default route): plugged into the node's
    // bridge like a pod, with an address from the top of the pod range, which host-local never hands out this low.
    sh('ip', 'netns', 'add', FAKE_POD_NS);
    sh('ip', 'link', 'add', `cpgp-${suffix}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', FAKE_POD_NS);
    sh('ip', 'link', 'set', `cpgp-${suffix}`, 'master', 'cpnode0', 'up');
    sh('ip', 'netns', 'exec', FAKE_POD_NS, 'ip', 'addr', 'add', '10.77.0.250/24', 'dev', 'eth0');
    sh('ip', 'netns', 'exec', FAKE_POD_NS, 'ip', 'link', 'set', 'eth0', 'up');
    sh('ip', 'netns', 'exec', FAKE_POD_NS, 'ip', 'route', 'add', 'default', 'via', realNode.ip);
  });

  afterAll(() => {
    for (const link of [`cpgo-${suffix}`, `cpgp-${suffix}`]) {
      try {
        sh('ip', 'link', 'del', link);
      } catch {
        /* already gone */
      }
    }
    for (const netns of [OUTSIDE_NS, FAKE_POD_NS]) {
      try {
        sh('ip', 'netns', 'del', netns);
      } catch {
        /* already gone */
      }
    }
  });

  it('resolves cluster names, reaches the apiserver through its Service, and has no route off the machine', async () => {
    const script = `
      const dns = require('node:dns').promises, net = require('node:net');
      const out = {};
      const connect = (host, port) => new Promise((resolve) => {
        const s = net.connect({ host, port, timeout: 3000 });
        s.on('connect', () => { s.destroy(); resolve('connected'); });
        s.on('timeout', () => { s.destroy(); resolve('timeout'); });
        s.on('error', (e) => resolve(e.code));
      });
      (async () => {
        out.service = (await dns.lookup('kubernetes.default.svc.cluster.local')).address;
        out.outsideName = await dns.lookup('example.com').then((r) => r.address, (e) => e.code);
        out.apiserver = await connect(out.service, 443);
        out.outside = await connect('${OUTSIDE_IP}', 80);
        console.log(JSON.stringify(out));
      })();`;
    const result = JSON.parse((await runInPod('network-probe', script)).trim()) as Record<string, string>;
    expect(result.service).toBe(
      kubectl('get', 'service', 'kubernetes', '-n', 'default', '-o', 'jsonpath={.spec.clusterIP}'),
    );
    expect(result.apiserver).toBe('connected');
    // No name outside the cluster is looked up anywhere: CoreDNS answers NXDOMAIN itself.
    expect(result.outsideName).toBe('ENOTFOUND');
    // No route: the kernel refuses before any packet is made.
    expect(result.outside).toBe('ENETUNREACH');
  });

  it('drops what a pod sends past the bridge, while the host reaches the same place', async () => {
    const listener = new UdpListener(OUTSIDE_NS, OUTSIDE_IP, 5555);
    try {
      await waitFor('the listener', () => Promise.resolve(listener.received.includes('listening') || undefined));
      sendUdp(undefined, OUTSIDE_IP, 5555, 'from-host');
      await waitFor('the host datagram', () => Promise.resolve(listener.received.includes('from-host') || undefined));
      // The fake pod reaches the node's own address on the bridge...
      const nodeListener = new UdpListener(FAKE_POD_NS, '10.77.0.250', 5556);
      try {
        await waitFor('the fake pod listener', () =>
          Promise.resolve(nodeListener.received.includes('listening') || undefined),
        );
        sendUdp(undefined, '10.77.0.250', 5556, 'host-to-fake-pod');
        await waitFor('the bridge path', () =>
          Promise.resolve(nodeListener.received.includes('host-to-fake-pod') || undefined),
        );
      } finally {
        nodeListener.stop();
      }
      // ...but what it sends through the node to the outside is dropped by the guard, and counted.
      const dropsBefore = guardDrops();
      for (let i = 0; i < 5; i++) sendUdp(FAKE_POD_NS, OUTSIDE_IP, 5555, `from-pod-${String(i)}`);
      await waitFor('the guard to count the drops', () =>
        Promise.resolve(guardDrops() >= dropsBefore + 5 || undefined),
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(listener.received.filter((m) => m.startsWith('from-pod'))).toEqual([]);
    } finally {
      listener.stop();
    }
  });
});
