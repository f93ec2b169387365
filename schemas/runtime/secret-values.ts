// Rules for values that live in Secrets, which the JSON Schemas cannot check (a resource names the Secret, not
// the value). The operator checks them for the stream's ResolvedRefs condition; the sidecar again when it reads
// the files, so a Secret changed afterwards still cannot reach libsrt or a URL unchecked.

/** SRT refuses a passphrase outside these lengths. */
export const SRT_PASSPHRASE_LENGTH = { min: 10, max: 79 };

/** An RTMP stream key becomes the last part of a URL's path: printable ASCII without spaces. */
export const RTMP_STREAM_KEY = /^[\x21-\x7e]{1,512}$/;
