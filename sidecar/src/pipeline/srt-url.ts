// srt://host:port[?latency=ms&streamid=...] as the config's SrtUrl pattern allows. Only the query keys a
// caller can honour are read; anything else in the query is refused, so a typo is not silently ignored.

export interface SrtTarget {
  host: string;
  port: number;
  latencyMs?: number;
  streamId?: string;
}

export class SrtUrlError extends Error {
  override name = 'SrtUrlError';
}

export function parseSrtUrl(text: string): SrtTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SrtUrlError(`not a URL: ${text}`);
  }
  if (url.protocol !== 'srt:') throw new SrtUrlError(`not an srt:// URL: ${text}`);
  const port = Number(url.port);
  if (!url.hostname || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SrtUrlError(`an SRT URL needs a host and a port: ${text}`);
  }
  const target: SrtTarget = { host: url.hostname.replace(/^\[|\]$/g, ''), port };
  for (const [key, value] of url.searchParams) {
    if (key === 'latency') {
      const latency = Number(value);
      if (!Number.isInteger(latency) || latency < 0 || latency > 8000) {
        throw new SrtUrlError(`latency must be 0 to 8000 ms, got ${value}`);
      }
      target.latencyMs = latency;
    } else if (key === 'streamid') {
      target.streamId = value;
    } else {
      throw new SrtUrlError(
        `unsupported SRT URL parameter ${key} (use the config's fields for passphrase and key length)`,
      );
    }
  }
  return target;
}
