import { describe, expect, it } from 'vitest';
import { rtmpTarget } from '../../sidecar/src/pipeline/rtmp-url.ts';

describe('rtmpTarget', () => {
  it('appends the stream key as the last path element, as services hand out "server URL" and "stream key"', () => {
    expect(rtmpTarget('rtmp://live.example/app', 'abc-123')).toEqual({
      url: 'rtmp://live.example/app/abc-123',
      key: 'abc-123',
    });
    expect(rtmpTarget('rtmps://live.example:443/app/', 'k?bw=1').url).toBe('rtmps://live.example:443/app/k?bw=1');
    expect(rtmpTarget('rtmp://10.0.0.5:1935', 'k').url).toBe('rtmp://10.0.0.5:1935/k');
  });

  it('refuses other schemes, credentials, queries and keys that cannot end a URL, never quoting the key', () => {
    expect(() => rtmpTarget('srt://live.example/app', 'k')).toThrow(/not an rtmp/);
    expect(() => rtmpTarget('rtmp://user:pw@live.example/app', 'k')).toThrow(/no user, query or fragment/);
    expect(() => rtmpTarget('rtmp://live.example/app?x=1', 'k')).toThrow(/no user, query or fragment/);
    expect(() => rtmpTarget('not a url', 'k')).toThrow(/not a URL/);
    for (const key of ['', 'two words', 'line\nbreak', 'ключ', 'k'.repeat(513)]) {
      let message = '';
      try {
        rtmpTarget('rtmp://live.example/app', key);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toBe('the RTMP stream key must be 1 to 512 printable ASCII characters without spaces');
    }
  });
});
