// A KubeConfig whose API calls reuse their connections. client-node 2.0 builds a new undici Agent for every
// request (KubeConfig.applySecurityAuthentication -> createDispatcher), so every call opened a new TLS
// connection to the apiserver: a handshake on both sides for each status write, Event or TokenReview. Here one
// Agent is kept per distinct set of TLS options (cluster, credentials), and reused.

import { createHash } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';

type CreateDispatcher = (cluster: unknown, agentOptions: Record<string, unknown>) => unknown;
const MAX_AGENTS = 8;

export function pooledKubeConfig(
  load: (kc: KubeConfig) => void = (kc) => {
    kc.loadFromDefault();
  },
): KubeConfig {
  const kc = new KubeConfig();
  load(kc);
  const target = kc as unknown as { createDispatcher: CreateDispatcher };
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
  return kc;
}
