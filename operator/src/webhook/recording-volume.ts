// The volume a stream's recording goes to, as the injected pod sees it, and what the sidecar's config says of
// it. A claim is shared by every pod of the stream, so each records into its own directory, named after the pod
// (subPathExpr, which the kubelet creates); an emptyDir belongs to its pod already.

import type { V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import { quantityBytes } from '../../../schemas/runtime/quantity.ts';

export const RECORDING_VOLUME = 'cloudphone-recordings';
export const RECORDING_MOUNT_PATH = '/var/lib/cloudphone/recordings';
/** Less than this holds too few segments to be worth recording. */
export const MIN_RECORDING_BYTES = 16 * 1024 * 1024;

export interface RecordingVolume {
  volume: V1Volume;
  mount: V1VolumeMount;
  config: { directory: string; segmentSeconds: number; maxBytes: number; maxAgeSeconds?: number };
}

/** undefined when the stream records nothing. */
export function recordingVolume(stream: CloudPhoneStream): RecordingVolume | undefined {
  const recording = stream.spec.recording;
  if (!recording || recording.enabled === false) return undefined;
  const { persistentVolumeClaim: claim, emptyDir } = recording.volume;
  const volume: V1Volume = claim
    ? { name: RECORDING_VOLUME, persistentVolumeClaim: { claimName: claim.claimName } }
    : {
        name: RECORDING_VOLUME,
        emptyDir: {
          ...(emptyDir?.medium ? { medium: emptyDir.medium } : {}),
          ...(emptyDir?.sizeLimit !== undefined ? { sizeLimit: String(emptyDir.sizeLimit) } : {}),
        },
      };
  const mount: V1VolumeMount = {
    name: RECORDING_VOLUME,
    mountPath: RECORDING_MOUNT_PATH,
    ...(claim ? { subPathExpr: '$(POD_NAME)' } : {}),
  };
  const maxAgeMinutes = recording.retention.maxAgeMinutes;
  return {
    volume,
    mount,
    config: {
      directory: RECORDING_MOUNT_PATH,
      segmentSeconds: recording.segmentSeconds ?? 60,
      maxBytes: quantityBytes(recording.retention.maxSize),
      ...(maxAgeMinutes !== undefined ? { maxAgeSeconds: maxAgeMinutes * 60 } : {}),
    },
  };
}

/** What is wrong with a stream's recording that its schema cannot say, as [field, message] pairs. */
export function recordingProblems(stream: CloudPhoneStream): [string, string][] {
  const recording = stream.spec.recording;
  if (!recording) return [];
  const problems: [string, string][] = [];
  const maxBytes = quantityBytes(recording.retention.maxSize);
  if (!(maxBytes >= MIN_RECORDING_BYTES))
    problems.push(['spec.recording.retention.maxSize', 'must be at least 16Mi: less holds too few segments']);
  const sizeLimit = recording.volume.emptyDir?.sizeLimit;
  if (sizeLimit !== undefined && quantityBytes(sizeLimit) < maxBytes)
    problems.push([
      'spec.recording.volume.emptyDir.sizeLimit',
      `is smaller than retention.maxSize (${String(recording.retention.maxSize)}): the volume would fill (or the kubelet evict the pod) before retention makes room`,
    ]);
  return problems;
}
