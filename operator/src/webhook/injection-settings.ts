// What the injector needs to know besides the stream: the operator's defaults for the sidecar and how the
// sidecar reaches the operator.

import type { V1ResourceRequirements } from '@kubernetes/client-node';

export interface InjectionSettings {
  sidecarImage: string;
  sidecarImagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  sidecarResources: V1ResourceRequirements;
  /** Size limit of the memory-backed shared volume (frames of three slots at 1080x2400 RGBA take 31 MB). */
  sharedVolumeSizeLimit: string;
  /** Native sidecars (init containers with restartPolicy Always) need Kubernetes 1.29 or newer. */
  nativeSidecars: boolean;
  metricsPort: number;
  /**
   * The operator's report endpoint; absent means sidecars do not report. The CAs to trust come from the ConfigMap
   * `caConfigMap` of the pod's namespace (kept current by the leader), mounted into the sidecar.
   */
  report?: { url: string; caConfigMap: string; intervalSeconds: number };
}
