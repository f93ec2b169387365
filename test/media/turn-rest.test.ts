// TURN credentials handed to viewers are their own and short-lived (the TURN REST scheme), tested with Debian's
// coturn in use-auth-secret mode: a werift viewer restricted to relays reaches the phone through coturn with the
// credentials from the sidecar's Link headers, each session's are different, the shared secret never leaves the
// sidecar, and coturn refuses the same user name once its expiry has passed.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../cluster/wait-for.ts';
import { TurnServer } from './turn-server.ts';
import {
  CONTROL_TOKEN,
  startWhepPhone,
  VIEWER_TOKEN,
  WeriftViewer,
  whepRequest,
  type WhepPhone,
} from './webrtc-peers.ts';

const WIDTH = 320;
const HEIGHT = 576;
const SECRET = 'coturn-static-auth-secret-0123456789';
const TTL_SECONDS = 600;

interface LinkedServer {
  url: string;
  username: string;
  credential: string;
}

/** The TURN servers a WHEP response's Link headers name, with their credentials. */
function turnLinks(response: Response): LinkedServer[] {
  const header = response.headers.get('link') ?? '';
  return [...header.matchAll(/<(turn:[^>]+)>; rel="ice-server"; username="([^"]*)"; credential="([^"]*)"/g)].map(
    (m) => ({ url: m[1] ?? '', username: m[2] ?? '', credential: m[3] ?? '' }),
  );
}

describe('TURN REST credentials with coturn', () => {
  let turn: TurnServer;
  let phone: WhepPhone;
  const viewers: WeriftViewer[] = [];

  beforeAll(async () => {
    turn = await TurnServer.start(SECRET);
    phone = await startWhepPhone({
      width: WIDTH,
      height: HEIGHT,
      files: { 'turn-rest': `${SECRET}\n` },
      webrtc: {
        iceServers: [
          {
            urls: [`turn:127.0.0.1:${String(turn.port)}?transport=udp`],
            restAuthSecretFile: '{tokens}/turn-rest',
            credentialTtlSeconds: TTL_SECONDS,
          },
        ],
      },
    });
  }, 60_000);

  afterAll(async () => {
    for (const v of viewers) await v.close();
    await phone.stop();
    await turn.stop();
  });

  it('gives each session its own credential, valid for the configured time, and never the secret', async () => {
    const options = await whepRequest(phone.base, 'OPTIONS', '/whep', { token: VIEWER_TOKEN });
    const [before] = turnLinks(options);
    expect(before).toBeDefined();
    const nowSeconds = Date.now() / 1000;
    const [expiry, session] = (before?.username ?? '').split(':');
    expect(Number(expiry)).toBeGreaterThan(nowSeconds + TTL_SECONDS - 30);
    expect(Number(expiry)).toBeLessThan(nowSeconds + TTL_SECONDS + 30);
    expect(session).toMatch(/^[0-9a-f-]{36}$/);
    expect(before?.credential).toBe(
      createHmac('sha1', SECRET)
        .update(before?.username ?? '')
        .digest('base64'),
    );
    expect(options.headers.get('link')).not.toContain(SECRET);
    const again = turnLinks(await whepRequest(phone.base, 'OPTIONS', '/whep', { token: VIEWER_TOKEN }));
    expect(again[0]?.username).not.toBe(before?.username);
    // Nothing for a client without a token.
    expect(turnLinks(await whepRequest(phone.base, 'OPTIONS', '/whep', {}))).toEqual([]);
  });

  it('a viewer that may only relay reaches the phone through coturn with them', async () => {
    const options = await whepRequest(phone.base, 'OPTIONS', '/whep', { token: CONTROL_TOKEN });
    const [server] = turnLinks(options);
    if (!server) throw new Error('no TURN server announced');
    const v = await WeriftViewer.connect({
      base: phone.base,
      token: CONTROL_TOKEN,
      width: WIDTH,
      height: HEIGHT,
      ice: {
        iceServers: [
          { urls: server.url.replace(/\?.*$/, ''), username: server.username, credential: server.credential },
        ],
        iceTransportPolicy: 'relay',
      },
    });
    viewers.push(v);
    await waitUntil('frames through the relay', () => v.decoder.stamps.filter((s) => s.frame !== null).length >= 20);
    // coturn allocated a relay for the viewer's user, and one for the sidecar's side of the session under
    // that session's own user name.
    expect(turn.log).toContain(`user <${server.username}>: incoming packet ALLOCATE processed, success`);
    const session = v.sessionUrl.split('/').pop() ?? '';
    expect(turn.log).toMatch(new RegExp(`user <\\d+:${session}>: incoming packet ALLOCATE processed, success`));
  });

  it('coturn refuses a user name past its expiry, though its credential is made with the right secret', async () => {
    const expired = `${String(Math.floor(Date.now() / 1000) - 60)}:00000000-0000-4000-8000-000000000000`;
    const v = await WeriftViewer.connect({
      base: phone.base,
      token: VIEWER_TOKEN,
      width: WIDTH,
      height: HEIGHT,
      ice: {
        iceServers: [
          {
            urls: `turn:127.0.0.1:${String(turn.port)}`,
            username: expired,
            credential: createHmac('sha1', SECRET).update(expired).digest('base64'),
          },
        ],
        iceTransportPolicy: 'relay',
      },
    }).catch((error: unknown) => error);
    if (v instanceof WeriftViewer) viewers.push(v);
    await waitUntil('coturn to refuse the expired user', () => turn.log.includes(expired));
    expect(turn.log).toContain(`user <${expired}>: incoming packet message processed, error 401: Unauthorized`);
    expect(turn.log).not.toMatch(new RegExp(`${expired}.*ALLOCATE processed, success`));
  });
});
