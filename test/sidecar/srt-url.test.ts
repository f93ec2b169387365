import { describe, expect, it } from 'vitest';
import { parseSrtUrl } from '../../sidecar/src/pipeline/srt-url.ts';

describe('parseSrtUrl', () => {
  it('reads host, port, latency and stream id', () => {
    expect(parseSrtUrl('srt://ingest.media.svc:9000?latency=40&streamid=%23!::r=ns/pod,m=publish')).toEqual({
      host: 'ingest.media.svc',
      port: 9000,
      latencyMs: 40,
      streamId: '#!::r=ns/pod,m=publish',
    });
  });

  it('takes IPv6 literals without their brackets', () => {
    expect(parseSrtUrl('srt://[::1]:9000')).toEqual({ host: '::1', port: 9000 });
  });

  it.each([
    ['http://host:9000', /not an srt:\/\/ URL/],
    ['srt://host', /needs a host and a port/],
    ['srt://host:9000?latency=-1', /latency must be 0 to 8000/],
    ['srt://host:9000?passphrase=secret', /unsupported SRT URL parameter passphrase/],
    ['not a url', /not a URL/],
  ])('refuses %s', (url, message) => {
    expect(() => parseSrtUrl(url)).toThrow(message);
  });
});
