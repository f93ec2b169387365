// A fake of the few API calls the pool and claim reconcilers make, with a pods cache that lags behind the
// apiserver on purpose: the races the reconcilers must survive (a label the cache has not seen, a pod created a
// moment ago) are driven step by step, which a real apiserver and informer cannot be made to do on cue. The
// "server" side keeps resourceVersions and applies JSON patches with their tests, as the apiserver does.

import {
  ApiException,
  type CoreV1Api,
  type CustomObjectsApi,
  type V1Pod,
  type V1Secret,
} from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import pino from 'pino';
import type { ResilientInformer } from '../../../operator/src/kube/resilient-informer.ts';
import type { StatusWriter } from '../../../operator/src/controller/status-writer.ts';
import type { ReportStore } from '../../../operator/src/controller/sidecar-reports.ts';

export const silentLog = pino({ level: 'silent' });

/** A cache the test fills by hand: it shows only what the test synced into it. */
export class FakeCache<T extends { metadata?: { name?: string; namespace?: string } }> {
  readonly objects = new Map<string, T>();

  set(object: T): void {
    this.objects.set(`${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`, structuredClone(object));
  }

  remove(namespace: string, name: string): void {
    this.objects.delete(`${namespace}/${name}`);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.objects.get(`${namespace ?? ''}/${name}`);
  }

  list(namespace?: string): T[] {
    return [...this.objects.values()].filter((o) => namespace === undefined || o.metadata?.namespace === namespace);
  }

  asInformer(): ResilientInformer<T & { apiVersion?: string; kind?: string }> {
    return this as unknown as ResilientInformer<T & { apiVersion?: string; kind?: string }>;
  }
}

export class FakeApiServer {
  readonly pods = new Map<string, V1Pod>();
  readonly secrets = new Map<string, V1Secret>();
  readonly calls: string[] = [];
  created = 0;
  private version = 100;

  addPod(pod: V1Pod): V1Pod {
    const stored = structuredClone(pod);
    stored.metadata = { ...stored.metadata, uid: `uid-${stored.metadata?.name ?? ''}`, resourceVersion: this.next() };
    this.pods.set(stored.metadata.name ?? '', stored);
    return structuredClone(stored);
  }

  pod(name: string): V1Pod | undefined {
    const pod = this.pods.get(name);
    return pod && structuredClone(pod);
  }

  core(): CoreV1Api {
    return {
      listNamespacedPod: ({ namespace, labelSelector }: { namespace: string; labelSelector?: string }) => {
        this.calls.push(`list ${labelSelector ?? ''}`);
        const [key, value] = (labelSelector ?? '').split('=');
        return Promise.resolve({
          items: [...this.pods.values()]
            .filter((p) => p.metadata?.namespace === namespace)
            .filter((p) => !key || p.metadata?.labels?.[key] === value)
            .map((p) => structuredClone(p)),
        });
      },
      patchNamespacedPod: ({ name, body }: { name: string; body: jsonpatch.Operation[] }) => {
        this.calls.push(`patch ${name}`);
        const pod = this.pods.get(name);
        if (!pod) return Promise.reject(new ApiException(404, 'not found', {}, {}));
        let patched: V1Pod;
        try {
          patched = jsonpatch.applyPatch(structuredClone(pod), body, true, false).newDocument;
        } catch {
          return Promise.reject(new ApiException(422, 'test failed', {}, {}));
        }
        patched.metadata = { ...patched.metadata, resourceVersion: this.next() };
        this.pods.set(name, patched);
        return Promise.resolve(structuredClone(patched));
      },
      deleteNamespacedPod: ({
        name,
        body,
      }: {
        name: string;
        body?: { preconditions?: { uid?: string; resourceVersion?: string } };
      }) => {
        this.calls.push(`delete ${name}`);
        const pod = this.pods.get(name);
        if (!pod) return Promise.reject(new ApiException(404, 'not found', {}, {}));
        const wanted = body?.preconditions;
        if (
          (wanted?.uid && wanted.uid !== pod.metadata?.uid) ||
          (wanted?.resourceVersion && wanted.resourceVersion !== pod.metadata?.resourceVersion)
        )
          return Promise.reject(new ApiException(409, 'precondition failed', {}, {}));
        this.pods.delete(name);
        return Promise.resolve(pod);
      },
      createNamespacedPod: ({ namespace, body }: { namespace: string; body: V1Pod }) => {
        this.calls.push('create pod');
        const name = `${body.metadata?.generateName ?? 'pod-'}${String(++this.created)}`;
        return Promise.resolve(
          this.addPod({
            ...body,
            metadata: { ...body.metadata, name, namespace, creationTimestamp: new Date() },
            status: { phase: 'Pending' },
          }),
        );
      },
      readNamespacedSecret: ({ name, namespace }: { name: string; namespace: string }) => {
        this.calls.push(`read secret ${name}`);
        const secret = this.secrets.get(`${namespace}/${name}`);
        return secret ? Promise.resolve(secret) : Promise.reject(new ApiException(404, 'not found', {}, {}));
      },
      createNamespacedSecret: ({ namespace, body }: { namespace: string; body: V1Secret }) => {
        const name = body.metadata?.name ?? `${body.metadata?.generateName ?? ''}${String(++this.created)}`;
        this.calls.push(`create secret ${name}`);
        if (this.secrets.has(`${namespace}/${name}`))
          return Promise.reject(new ApiException(409, 'already exists', {}, {}));
        const data = Object.fromEntries(
          Object.entries(body.stringData ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        );
        const stored = { ...body, metadata: { ...body.metadata, name, namespace }, data };
        this.secrets.set(`${namespace}/${name}`, stored);
        return Promise.resolve(structuredClone(stored));
      },
    } as unknown as CoreV1Api;
  }

  /** Finalizer patches and spec.replicas patches succeed and are recorded; the caches are the test's to update. */
  custom(): CustomObjectsApi {
    return {
      patchNamespacedCustomObject: ({ name }: { name: string }) => {
        this.calls.push(`patch custom ${name}`);
        return Promise.resolve({});
      },
    } as unknown as CustomObjectsApi;
  }

  private next(): string {
    return String(++this.version);
  }
}

/** Records status writes instead of making them. */
export class RecordingStatusWriter {
  readonly writes: { name: string; status: Record<string, unknown> }[] = [];
  write(target: { name: string }, status: unknown): Promise<boolean> {
    this.writes.push({ name: target.name, status: structuredClone(status) as Record<string, unknown> });
    return Promise.resolve(true);
  }
  last(name: string): Record<string, unknown> | undefined {
    return this.writes.filter((w) => w.name === name).at(-1)?.status;
  }
  asStatusWriter(): StatusWriter {
    return this as unknown as StatusWriter;
  }
}

export class RecordingEvents {
  readonly events: { name: string; type: string; reason: string; message: string }[] = [];
  record(object: { metadata?: { name?: string } }, type: string, reason: string, message: string): Promise<void> {
    this.events.push({ name: object.metadata?.name ?? '', type, reason, message });
    return Promise.resolve();
  }
}

export const noReports = { controlViewers: () => 0 } as unknown as ReportStore;
