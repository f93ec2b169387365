// The URL the RTMP push publishes to: the configured ingest URL (placeholders expanded) with the stream key as
// its last path element, as CDNs and live services hand them out ("server URL" and "stream key"). The result
// holds a secret: it goes to the native addon and nowhere else.

import { RTMP_STREAM_KEY } from '../../../schemas/runtime/secret-values.ts';

export class RtmpUrlError extends Error {
  override name = 'RtmpUrlError';
}

export interface RtmpTarget {
  /** The URL with the key: secret. */
  url: string;
  /** The key alone, which the addon replaces in anything it reports. */
  key: string;
}

export function rtmpTarget(ingest: string, key: string): RtmpTarget {
  let url: URL;
  try {
    url = new URL(ingest);
  } catch {
    throw new RtmpUrlError(`not a URL: ${ingest}`);
  }
  if (url.protocol !== 'rtmp:' && url.protocol !== 'rtmps:')
    throw new RtmpUrlError(`not an rtmp:// or rtmps:// URL: ${ingest}`);
  if (!url.hostname) throw new RtmpUrlError(`an RTMP URL needs a host: ${ingest}`);
  if (url.username || url.password || url.search || url.hash)
    throw new RtmpUrlError(`an RTMP URL takes no user, query or fragment (the key comes from its Secret): ${ingest}`);
  // Never quote the key: the message may be logged.
  if (!RTMP_STREAM_KEY.test(key))
    throw new RtmpUrlError('the RTMP stream key must be 1 to 512 printable ASCII characters without spaces');
  return { url: `${ingest.replace(/\/+$/, '')}/${key}`, key };
}
