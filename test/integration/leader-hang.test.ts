// One leader at a time when the leader's apiserver connection hangs (not when it dies): operator A talks to the
// apiserver through a proxy that stops carrying anything, operator B directly. A must stop leading, and stop its
// leader work, before B can take over; once the path heals, A stays a follower.

import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdmissionregistrationV1Api, CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { HangingProxy } from '../cluster/hanging-proxy.ts';
import { OperatorProcess, type LogLine } from '../cluster/operator-process.ts';
import {
  createStream,
  deleteStreams,
  installCrds,
  kubeConfig,
  reconciledStream,
  streamBody,
  useTestNamespace,
  waitFor,
} from '../cluster/test-cluster.ts';
import { holdsFor } from '../cluster/wait-for.ts';

const namespace = useTestNamespace('leader-hang', { 'cloudphone.io/injection': 'enabled' });
let proxy: HangingProxy;
let a: OperatorProcess;
let b: OperatorProcess;

/** The admin kubeconfig with its server pointed at the proxy (the apiserver's certificate names 127.0.0.1). */
function kubeconfigThrough(port: number): string {
  const original = readFileSync(inject('kubeconfig'), 'utf8');
  const file = join(tmpdir(), `kubeconfig-through-proxy-${String(port)}`);
  writeFileSync(file, original.replace(/server: https:\/\/[^\s]+/, `server: https://127.0.0.1:${String(port)}`));
  return file;
}

async function leaseHolder(): Promise<string | undefined> {
  const lease = await kubeConfig()
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: 'cloudphone-operator', namespace: 'cloudphone-system' });
  return lease.spec?.holderIdentity;
}

function firstLog(op: OperatorProcess, msg: string, after = 0): LogLine | undefined {
  return op.logs.find((l) => l.msg === msg && Number(l.time) >= after);
}

async function leaderMetric(op: OperatorProcess): Promise<string | undefined> {
  const text = await fetch(`http://127.0.0.1:${String(op.healthPort)}/metrics`).then((r) => r.text());
  return /^cloudphone_leader (\d)/m.exec(text)?.[1];
}

describe('a leader whose apiserver connection hangs', () => {
  beforeAll(async () => {
    installCrds();
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespacedSecret({
        namespace: namespace(),
        body: {
          metadata: { name: 'viewer-tokens' },
          stringData: { view: 'view-token-1234', control: 'control-token-5678' },
        },
      });
    const server = new URL(/server: (https:\/\/[^\s]+)/.exec(readFileSync(inject('kubeconfig'), 'utf8'))?.[1] ?? '');
    proxy = await new HangingProxy(server.hostname, Number(server.port)).listen();
    a = await new OperatorProcess('hang-a', kubeconfigThrough(proxy.port)).started();
    await waitFor('hang-a to lead', () => Promise.resolve(a.isLeaderInLogs() || undefined));
    b = await new OperatorProcess('hang-b', inject('kubeconfig')).started();
  });

  afterAll(async () => {
    proxy.heal(); // should the test fail with A cut off
    await deleteStreams(namespace());
    await a.stop();
    await b.stop();
    await proxy.close();
    const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    await admission.deleteMutatingWebhookConfiguration({ name: 'cloudphone-operator' }).catch(() => undefined);
    await admission.deleteValidatingWebhookConfiguration({ name: 'cloudphone-operator' }).catch(() => undefined);
  });

  it('steps down and stops its work before the other replica takes over, and stays a follower after', async () => {
    await createStream(namespace(), streamBody('before-hang', 'before-hang'));
    await reconciledStream(namespace(), 'before-hang');
    expect(await leaseHolder()).toBe('hang-a');

    const hungAt = Date.now();
    proxy.hang();
    await waitFor('hang-b to take the Lease', async () => ((await leaseHolder()) === 'hang-b' ? true : undefined));
    const bLeads = firstLog(b, 'became leader', hungAt);
    const aStops = firstLog(a, 'stopped leading', hungAt);
    const aWorkStopped = firstLog(a, 'leader work stopped', hungAt);
    expect(bLeads, 'hang-b logs that it leads').toBeDefined();
    // A knows by its own clock, with its connection still hung, and has drained its workers (their calls were
    // aborted) before B has even started.
    expect(aStops, `hang-a never stepped down:\n${a.tail()}`).toBeDefined();
    expect(Number(aStops?.time)).toBeLessThan(Number(bLeads?.time));
    expect(aWorkStopped, `hang-a's leader work did not stop:\n${a.tail()}`).toBeDefined();
    expect(Number(aWorkStopped?.time)).toBeLessThan(Number(bLeads?.time));
    expect(await leaderMetric(a)).toBe('0');
    expect(await leaderMetric(b)).toBe('1');

    // The new leader does the work while A is cut off.
    await createStream(namespace(), streamBody('during-hang', 'during-hang'));
    await reconciledStream(namespace(), 'during-hang');

    // Healed: A reads B's fresh renewals and stays a follower; exactly one leader throughout.
    const healedAt = Date.now();
    proxy.heal();
    await holdsFor(
      'one leader, hang-b',
      () => !a.isLeaderInLogs() && b.isLeaderInLogs(),
      3 * 4000, // three lease durations
    );
    expect(firstLog(a, 'became leader', healedAt)).toBeUndefined();
    expect(await leaseHolder()).toBe('hang-b');
    await createStream(namespace(), streamBody('after-heal', 'after-heal'));
    await reconciledStream(namespace(), 'after-heal');
  });
});
