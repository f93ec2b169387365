import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { cannotRestart } from '../../../operator/src/controller/pod-restart.ts';

const optedIn = { 'cloudphone.io/injection': 'enabled' };

function pod(owner?: { kind: string; controller?: boolean }): V1Pod {
  return {
    metadata: {
      name: 'phone-0',
      namespace: 'phones',
      ...(owner
        ? {
            ownerReferences: [
              { apiVersion: 'v1', kind: owner.kind, name: 'owner', uid: 'u', controller: owner.controller ?? true },
            ],
          }
        : {}),
    },
  };
}

describe('cannotRestart', () => {
  it.each(['ReplicaSet', 'StatefulSet', 'Job', 'CloudPhonePool'])(
    'lets a pod of a %s in an opted-in namespace be restarted',
    (kind) => {
      expect(cannotRestart(pod({ kind }), optedIn)).toBeUndefined();
    },
  );

  it('never restarts a bare pod: nothing would bring it back', () => {
    expect(cannotRestart(pod(), optedIn)).toBe('no controller would recreate it (a bare pod)');
    expect(cannotRestart(pod({ kind: 'ReplicaSet', controller: false }), optedIn)).toBe(
      'no controller would recreate it (a bare pod)',
    );
  });

  it('never restarts a pod whose controller is not known to recreate it', () => {
    expect(cannotRestart(pod({ kind: 'Node' }), optedIn)).toBe(
      'its controller, a Node, is not one known to recreate it',
    );
  });

  it('never restarts a pod of a namespace without injection: it would come back without the sidecar, for ever', () => {
    expect(cannotRestart(pod({ kind: 'ReplicaSet' }), {})).toBe(
      'namespace phones is not labelled cloudphone.io/injection=enabled, so a new pod would get no sidecar either',
    );
  });
});
