// The pure core of the sidecar-injection webhook: a pod, the streams of its namespace and the operator's
// settings in; a JSON Patch, or a denial with a message the user can act on, out. No I/O, so it is tested
// with golden files and a second pass that must change nothing.

import type { V1Container, V1EnvVar, V1Pod, V1ContainerPort } from '@kubernetes/client-node';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import type { CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import { ValidationError, type SchemaValidator } from '../../../schemas/runtime/validator.ts';
import {
  CONTROL_SOCKET,
  INJECT_OPT_OUT,
  INJECTION_STATUS_ANNOTATION,
  OVERRIDES_ANNOTATION,
  SHARED_MOUNT_PATH,
  SHARED_VOLUME,
  SIDECAR_CONTAINER,
  STREAM_LABEL,
  type InjectionStatus,
} from '../labels.ts';
import type { InjectionSettings } from './injection-settings.ts';
import { selectorMatches } from './label-selector.ts';
import { phoneUids } from './phone-uids.ts';
import { recordingVolume } from './recording-volume.ts';
import { secretMounts } from './secret-mounts.ts';
import { OverrideError, parseOverrides, renderSidecarConfig } from './sidecar-config.ts';

export type InjectionDecision =
  | { allowed: true; patch: Operation[]; injected?: InjectionStatus; skipped?: string; warnings: string[] }
  | { allowed: false; message: string };

const SIDECAR_SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export function isInjected(pod: V1Pod): boolean {
  const named = (c: V1Container): boolean => c.name === SIDECAR_CONTAINER;
  return (
    pod.metadata?.annotations?.[INJECTION_STATUS_ANNOTATION] !== undefined ||
    (pod.spec?.containers ?? []).some(named) ||
    (pod.spec?.initContainers ?? []).some(named)
  );
}

/** The pod said cloudphone.io/inject: "false", by label or by annotation. */
export function isOptedOut(pod: V1Pod): boolean {
  return pod.metadata?.labels?.[INJECT_OPT_OUT] === 'false' || pod.metadata?.annotations?.[INJECT_OPT_OUT] === 'false';
}

/** The streams of the pod's namespace whose selector matches it, oldest first. */
export function matchingStreams(pod: V1Pod, streams: CloudPhoneStream[]): CloudPhoneStream[] {
  return streams
    .filter((s) => !s.metadata?.deletionTimestamp && selectorMatches(s.spec.selector, pod.metadata?.labels))
    .sort((a, b) => {
      const at = String(a.metadata?.creationTimestamp ?? '');
      const bt = String(b.metadata?.creationTimestamp ?? '');
      return at === bt ? (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '') : at.localeCompare(bt);
    });
}

function allow(skipped: string): InjectionDecision {
  return { allowed: true, patch: [], skipped, warnings: [] };
}

export function injectSidecar(
  pod: V1Pod,
  streams: CloudPhoneStream[],
  settings: InjectionSettings,
  validator: SchemaValidator,
): InjectionDecision {
  if (isOptedOut(pod)) return allow(`opted out with ${INJECT_OPT_OUT}=false`);
  if (isInjected(pod)) return allow('already injected');
  const [stream, ...others] = matchingStreams(pod, streams);
  if (!stream) return allow('no stream selects the pod');
  const streamName = stream.metadata?.name ?? '';
  const warnings = others.map(
    (o) =>
      `streams ${streamName} and ${o.metadata?.name ?? ''} both select this pod; the older one, ${streamName}, streams it`,
  );

  const spec = pod.spec;
  const phone = spec?.containers.find((c) => c.name === stream.spec.phoneContainer);
  if (!spec || !phone) {
    return {
      allowed: false,
      message: `CloudPhoneStream ${streamName} selects this pod, but the pod has no container named "${stream.spec.phoneContainer}" (the stream's spec.phoneContainer)`,
    };
  }
  const conflict = [...(spec.volumes ?? [])].find((v) => v.name.startsWith('cloudphone-'));
  if (conflict) return { allowed: false, message: `volume name ${conflict.name} is reserved for cloudphone's sidecar` };
  if ((phone.volumeMounts ?? []).some((m) => m.mountPath === SHARED_MOUNT_PATH)) {
    return {
      allowed: false,
      message: `container ${phone.name} already mounts ${SHARED_MOUNT_PATH}, where cloudphone shares frames`,
    };
  }

  const secrets = secretMounts(stream, settings.report?.caConfigMap);
  const recording = recordingVolume(stream);
  let configJson: string;
  try {
    const overrides = parseOverrides(pod.metadata?.annotations?.[OVERRIDES_ANNOTATION]);
    configJson = JSON.stringify(
      renderSidecarConfig(stream, overrides, secrets, settings, validator, phoneUids(stream, pod, phone), recording),
    );
  } catch (error) {
    if (error instanceof OverrideError)
      return { allowed: false, message: `annotation ${OVERRIDES_ANNOTATION}: ${error.message}` };
    if (error instanceof ValidationError) {
      const details = error.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ');
      // Without overrides the stream alone is at fault: one the apiserver stored before a rule it breaks.
      const culprit =
        pod.metadata?.annotations?.[OVERRIDES_ANNOTATION] === undefined
          ? `CloudPhoneStream ${streamName}`
          : `annotation ${OVERRIDES_ANNOTATION}`;
      return { allowed: false, message: `${culprit} makes an invalid sidecar config: ${details}` };
    }
    throw error;
  }

  const status: InjectionStatus = {
    stream: streamName,
    generation: stream.metadata?.generation ?? 0,
    image: stream.spec.sidecar?.image ?? settings.sidecarImage,
  };
  const mutated = structuredClone(pod) as V1Pod & { spec: NonNullable<V1Pod['spec']> };
  mutated.metadata ??= {};
  mutated.metadata.labels = { ...mutated.metadata.labels, [STREAM_LABEL]: streamName };
  mutated.metadata.annotations = {
    ...mutated.metadata.annotations,
    [INJECTION_STATUS_ANNOTATION]: JSON.stringify(status),
  };
  // The phone and the sidecar run as different users, and share frame memory and the control socket (both mode
  // 06x0) through a group: with a pod fsGroup the kubelet makes the shared volume set-group-id, so every file and
  // socket made in it belongs to that group, and every container of the pod is a member. A pod that has an
  // fsGroup keeps it; otherwise it gets the sidecar's group, changed only where a volume's root does not have it.
  if (mutated.spec.securityContext?.fsGroup === undefined) {
    mutated.spec.securityContext = {
      ...mutated.spec.securityContext,
      fsGroup: SIDECAR_SECURITY_CONTEXT.runAsGroup,
      fsGroupChangePolicy: mutated.spec.securityContext?.fsGroupChangePolicy ?? 'OnRootMismatch',
    };
  }
  mutated.spec.volumes = [
    ...(mutated.spec.volumes ?? []),
    { name: SHARED_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: settings.sharedVolumeSizeLimit } },
    ...(recording ? [recording.volume] : []),
    ...secrets.volumes,
  ];
  const mutatedPhone = mutated.spec.containers.find((c) => c.name === phone.name);
  if (!mutatedPhone) throw new Error('unreachable: the phone container was found in the original pod');
  mutatedPhone.volumeMounts = [
    ...(mutatedPhone.volumeMounts ?? []),
    { name: SHARED_VOLUME, mountPath: SHARED_MOUNT_PATH },
  ];
  if (!(mutatedPhone.env ?? []).some((e) => e.name === 'CLOUDPHONE_SOCKET')) {
    mutatedPhone.env = [
      ...(mutatedPhone.env ?? []),
      { name: 'CLOUDPHONE_SOCKET', value: `${SHARED_MOUNT_PATH}/${CONTROL_SOCKET}` },
    ];
  }

  const sidecar = sidecarContainer(
    stream,
    status.image,
    configJson,
    [...(recording ? [recording.mount] : []), ...secrets.mounts],
    settings,
  );
  if (settings.nativeSidecars) {
    // First, so it runs before any other init container and long before the phone boots.
    sidecar.restartPolicy = 'Always';
    mutated.spec.initContainers = [sidecar, ...(mutated.spec.initContainers ?? [])];
  } else {
    mutated.spec.containers = [...mutated.spec.containers, sidecar];
  }
  return { allowed: true, patch: fastJsonPatch.compare(pod, mutated), injected: status, warnings };
}

function sidecarContainer(
  stream: CloudPhoneStream,
  image: string,
  configJson: string,
  secretMountList: NonNullable<V1Container['volumeMounts']>,
  settings: InjectionSettings,
): V1Container {
  const spec = stream.spec;
  const ports: V1ContainerPort[] = [{ name: 'metrics', containerPort: settings.metricsPort, protocol: 'TCP' }];
  const whep = spec.webrtc?.whep;
  if (whep && whep.enabled !== false) ports.push({ name: 'whep', containerPort: whep.port ?? 8443, protocol: 'TCP' });
  if (spec.srt?.mode === 'listener' && spec.srt.port !== undefined) {
    ports.push({ name: 'srt', containerPort: spec.srt.port, protocol: 'UDP' });
  }
  if (spec.webrtc?.udpPort !== undefined)
    ports.push({ name: 'webrtc', containerPort: spec.webrtc.udpPort, protocol: 'UDP' });
  const fieldEnv = (name: string, fieldPath: string): V1EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  return {
    name: SIDECAR_CONTAINER,
    image,
    imagePullPolicy: spec.sidecar?.imagePullPolicy ?? settings.sidecarImagePullPolicy,
    env: [
      { name: 'CLOUDPHONE_SIDECAR_CONFIG', value: configJson },
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('POD_UID', 'metadata.uid'),
      fieldEnv('NODE_NAME', 'spec.nodeName'),
    ],
    ports,
    resources: (spec.sidecar?.resources as V1Container['resources']) ?? settings.sidecarResources,
    securityContext: SIDECAR_SECURITY_CONTEXT,
    volumeMounts: [{ name: SHARED_VOLUME, mountPath: SHARED_MOUNT_PATH }, ...secretMountList],
    readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' }, periodSeconds: 5 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 10, failureThreshold: 3 },
  };
}
