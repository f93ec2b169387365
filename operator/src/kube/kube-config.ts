// A KubeConfig whose API calls reuse their connections, give up after a timeout, and (for the leader's work)
// stop when leadership ends.
//
// client-node 2.0 builds a new undici Agent for every request (KubeConfig.applySecurityAuthentication ->
// createDispatcher), so every call opened a new TLS connection to the apiserver: a handshake on both sides for
// each status write, Event or TokenReview. Here one Agent is kept per distinct set of TLS options (cluster,
// credentials), and reused. client-node sets no deadline on a call either (undici waits 300 s for headers), so a
// hung apiserver connection held a reconcile, or the Lease renewal, for minutes: every call here gets one.
// Watches set their own signal after this and are not affected.

import { createHash } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import type { LeadershipFence } from './leadership-fence.ts';

type CreateDispatcher = (cluster: unknown, agentOptions: Record<string, unknown>) => unknown;
interface SignalContext {
  setSignal(signal: AbortSignal): void;
}
type ApplyAuthentication = (
  context: SignalContext & { setHeaderParam(name: string, value: string): void },
) => Promise<void>;
const MAX_AGENTS = 8;

export interface KubeConfigOptions {
  /** Every API call is aborted after this long. */
  requestTimeoutMs?: number;
  /** Calls are refused outside a leadership term and aborted when it ends. */
  fence?: LeadershipFence;
  /** An Accept header for every call, lists and watches alike (e.g. to ask for object metadata only). */
  accept?: string;
}

export function pooledKubeConfig(
  load: (kc: KubeConfig) => void = (kc) => {
    kc.loadFromDefault();
  },
  options: KubeConfigOptions = {},
): KubeConfig {
  const kc = new KubeConfig();
  load(kc);
  const target = kc as unknown as {
    createDispatcher: CreateDispatcher;
    applySecurityAuthentication: ApplyAuthentication;
  };
  const create = target.createDispatcher.bind(kc);
  const agents = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    // The options hold the CA, client certificate and key as read for this request: a rotated file makes a new key.
    const key = createHash('sha256')
      .update(JSON.stringify([cluster, agentOptions]))
      .digest('hex');
    let agent = agents.get(key);
    if (agent === undefined) {
      agent = create(cluster, agentOptions);
      if (agents.size >= MAX_AGENTS) agents.delete(agents.keys().next().value ?? '');
      agents.set(key, agent);
    }
    return agent;
  };
  const { requestTimeoutMs, fence, accept } = options;
  if (requestTimeoutMs !== undefined || fence || accept) {
    const authenticate = target.applySecurityAuthentication.bind(kc);
    target.applySecurityAuthentication = async (context) => {
      // Before anything else: a call outside the term must not even read credentials.
      const term = fence?.signal();
      await authenticate(context);
      // After the generated client set its own (authentication comes last), so this one is sent.
      if (accept) context.setHeaderParam('Accept', accept);
      const timeout = requestTimeoutMs === undefined ? undefined : AbortSignal.timeout(requestTimeoutMs);
      const signal = term && timeout ? AbortSignal.any([term, timeout]) : (term ?? timeout);
      if (signal) context.setSignal(signal);
    };
  }
  return kc;
}
