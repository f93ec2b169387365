// The labels and annotations cloudphone reads and writes on namespaces and pods.

export const GROUP = 'cloudphone.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Namespace label that opts a namespace in to sidecar injection. */
export const INJECTION_LABEL = 'cloudphone.io/injection';
export const INJECTION_ENABLED = 'enabled';
/** Pod label or annotation that opts a pod out: cloudphone.io/inject: "false". */
export const INJECT_OPT_OUT = 'cloudphone.io/inject';
/** Pod annotation with JSON overrides of the stream's video and input settings, for this pod only. */
export const OVERRIDES_ANNOTATION = 'cloudphone.io/overrides';
/** Pod annotation the webhook writes: what it injected, from which stream generation. */
export const INJECTION_STATUS_ANNOTATION = 'cloudphone.io/injection-status';
/** Pod label the webhook writes: the stream whose sidecar the pod carries. Services select on it. */
export const STREAM_LABEL = 'cloudphone.io/stream';

/** Pod label of a pool's phones (the pool's name); status.selector of the pool selects on it. */
export const POOL_LABEL = 'cloudphone.io/pool';
/** Pod label of a phone bound to a claim (the claim's name). */
export const CLAIM_LABEL = 'cloudphone.io/claim';
/**
 * Pod annotations a claim adds with its label: the SHA-256 (hex) of the claim's own bearer token and its role.
 * The operator tells the phone's sidecar in its report replies; the token itself is only in the claim's Secret.
 */
export const CLAIM_TOKEN_DIGEST_ANNOTATION = 'cloudphone.io/claim-token-sha256';
/** The Secret holding the bound claim's token (the claim's status.tokenSecretName comes from here). */
export const CLAIM_TOKEN_SECRET_ANNOTATION = 'cloudphone.io/claim-token-secret';
export const CLAIM_ACCESS_ANNOTATION = 'cloudphone.io/claim-access';

/** Kubernetes' hint to ReplicaSets scaling down: lower cost goes first. */
export const DELETION_COST_ANNOTATION = 'controller.kubernetes.io/pod-deletion-cost';

/** Namespaces the webhook never touches, whatever their labels. */
export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'];

export const SIDECAR_CONTAINER = 'cloudphone-sidecar';
export const SHARED_VOLUME = 'cloudphone-shared';
/** Where the shared volume is mounted, in the phone container and in the sidecar. */
export const SHARED_MOUNT_PATH = '/run/cloudphone';
export const CONTROL_SOCKET = 'control.sock';
/** Audience of the projected token a sidecar proves itself with to the operator. */
export const REPORT_TOKEN_AUDIENCE = 'cloudphone-operator';

export interface InjectionStatus {
  stream: string;
  generation: number;
  image: string;
}
