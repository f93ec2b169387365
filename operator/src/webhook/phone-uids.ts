// Which users may connect to the sidecar's control socket: the phone's compositor, not an app inside the phone
// nor any other process that reaches the shared volume. The sidecar checks each connection with SO_PEERCRED.

import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { CloudPhoneStream } from '../../../generated/ts/api-types.ts';

// Android's `system` user. A Redroid-style image starts as root and Android's init then runs the composer
// service (the HWC that publishes frames) as system; Android's apps run as 10000 and up, and are refused.
const ANDROID_SYSTEM_UID = 1000;

/** The stream's spec.phoneUids, else the uid the pod spec gives the phone container, as the stream's docs say. */
export function phoneUids(stream: CloudPhoneStream, pod: V1Pod, phone: V1Container): number[] {
  if (stream.spec.phoneUids) return stream.spec.phoneUids;
  const uid = phone.securityContext?.runAsUser ?? pod.spec?.securityContext?.runAsUser;
  // Unset, the image's own user applies, which the webhook cannot see: root (and its system services) as
  // Android images run, or a user the stream names in spec.phoneUids.
  return uid === undefined || uid === 0 ? [0, ANDROID_SYSTEM_UID] : [uid];
}
