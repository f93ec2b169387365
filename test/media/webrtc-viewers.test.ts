// WHEP viewers end to end with an independent WebRTC stack: the reference producer publishes stamped frames,
// the sidecar encodes once and serves werift viewers over WHEP; the stamps read back from what each viewer
// decoded say which frames arrived, and the simulator says which input reached the phone.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PlayerMessages } from '../../sidecar/player/channel-messages.ts';
import { spsLevel } from '../../sidecar/src/webrtc/h264-parameter-sets.ts';
import { waitFor, waitUntil } from '../cluster/wait-for.ts';
import type { SimulatorEvent } from './media-peers.ts';
import {
  Body,
  CONTROL_TOKEN,
  h264Receiver,
  KeyAction,
  startWhepPhone,
  touchMessage,
  TouchAction,
  VIEWER_TOKEN,
  WeriftViewer,
  whepRequest,
  type WhepPhone,
  type WhepPhoneOptions,
} from './webrtc-peers.ts';

const WIDTH = 480;
const HEIGHT = 864;

let cleanups: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  cleanups = [];
});

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

type Phone = WhepPhone;

async function startPhone(options: Omit<WhepPhoneOptions, 'width' | 'height'> = {}): Promise<Phone> {
  const phone = await startWhepPhone({ width: WIDTH, height: HEIGHT, ...options });
  cleanups.push(() => phone.stop());
  return phone;
}

async function viewer(phone: Phone, token: string, dataChannel = true): Promise<WeriftViewer> {
  const v = await WeriftViewer.connect({ base: phone.base, token, width: WIDTH, height: HEIGHT, dataChannel });
  cleanups.push(() => v.close());
  return v;
}

/** POSTs the offer of a werift PeerConnection that never applies the answer (no ICE from its side, ever). */
async function postBareOffer(phone: Phone, token: string, dataChannel: boolean): Promise<Response> {
  const pc = h264Receiver();
  cleanups.push(() => pc.close());
  pc.addTransceiver('video', { direction: 'recvonly' });
  if (dataChannel) pc.createDataChannel('cloudphone');
  await pc.setLocalDescription(await pc.createOffer());
  return whepRequest(phone.base, 'POST', '/whep', { token, type: 'application/sdp', body: pc.localDescription?.sdp });
}

function frames(v: WeriftViewer): number[] {
  return v.decoder.stamps.flatMap((s) => (s.frame === null ? [] : [s.frame]));
}

function touches(phone: Phone): SimulatorEvent[] {
  return phone.simulator.events.filter((e) => e.event === 'input');
}

const OFFER_WITHOUT_H264 = [
  'v=0',
  'o=- 1 1 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=recvonly',
  'a=rtpmap:96 VP8/90000',
  '',
].join('\r\n');

describe('WHEP viewers', () => {
  it('a viewer receives the phone screen: stamps read back in order from its first frame on', async () => {
    const phone = await startPhone();
    const v = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('30 decoded frames', () => frames(v).length >= 30);
    const seen = frames(v);
    expect(v.decoder.stamps.filter((s) => s.frame === null)).toEqual([]);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1] ?? Infinity);
  });

  it('two viewers at once get the same pictures from one encode', async () => {
    const phone = await startPhone();
    const first = await viewer(phone, CONTROL_TOKEN);
    const second = await viewer(phone, VIEWER_TOKEN);
    await waitUntil('both viewers decoding', () => frames(first).length >= 20 && frames(second).length >= 20);
    const encodedBefore = phone.sidecar.stats().framesEncoded;
    const receivedBefore = first.rtpTimestamps.length;
    await waitUntil('30 more pictures', () => first.rtpTimestamps.length >= receivedBefore + 30);
    const both = frames(second).filter((frame) => frames(first).includes(frame));
    expect(both.length).toBeGreaterThanOrEqual(15);
    // One encode: the same RTP timestamps (the capture clock) reach both, and the encoder makes one picture per
    // picture a viewer gets, not one per viewer.
    const shared = second.rtpTimestamps.filter((t) => first.rtpTimestamps.includes(t));
    expect(shared.length).toBeGreaterThanOrEqual(15);
    const encoded = phone.sidecar.stats().framesEncoded - encodedBefore;
    expect(encoded).toBeLessThan((first.rtpTimestamps.length - receivedBefore) * 1.5);
  });

  it('a viewer that joins a still screen gets the last picture at once, as a keyframe', async () => {
    const phone = await startPhone();
    phone.simulator.command('pause');
    await waitUntil('the screen to go still', () => phone.simulator.events.some((e) => e.event === 'paused'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const encodedBefore = phone.sidecar.stats().framesEncoded;
    const publishedBefore = phone.sidecar.stats().framesPublished;
    const v = await viewer(phone, VIEWER_TOKEN);
    // The viewer takes pictures from a keyframe on only (AccessUnitBuffer starts at an SPS).
    await waitUntil('the still picture to arrive', () => v.rtpTimestamps.length >= 1);
    await v.decoder.finish();
    expect(frames(v).length).toBeGreaterThanOrEqual(1);
    expect(phone.sidecar.stats().framesEncoded).toBeGreaterThan(encodedBefore);
    expect(phone.sidecar.stats().framesPublished).toBe(publishedBefore);
  });

  it("a control viewer's touch reaches the phone at the same normalized place", async () => {
    const phone = await startPhone();
    const v = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('the data channel', () => v.channel?.readyState === 'open');
    v.sendTouch(TouchAction.Down, 0.25, 0.75);
    v.sendTouch(TouchAction.Up, 0.25, 0.75);
    await waitUntil('two touches at the phone', () => touches(phone).length >= 2);
    expect(touches(phone)[0]).toMatchObject({ kind: 'touch', action: 0, pointerId: 0 });
    expect(touches(phone)[0]?.x).toBeCloseTo(0.25, 5);
    expect(touches(phone)[0]?.y).toBeCloseTo(0.75, 5);
    expect(touches(phone)[1]).toMatchObject({ kind: 'touch', action: 1 });
  });

  it('a view-only viewer cannot send input: refused and counted, nothing reaches the phone', async () => {
    const phone = await startPhone();
    const v = await viewer(phone, VIEWER_TOKEN);
    await waitUntil('the data channel', () => v.channel?.readyState === 'open');
    for (let i = 0; i < 5; i++) v.sendTouch(TouchAction.Down, 0.5, 0.5);
    const refused = 'cloudphone_webrtc_viewer_messages_refused_total{reason="role"}';
    await waitFor('5 refusals', async () => ((await phone.metric(refused)) >= 5 ? true : undefined), 10_000);
    expect(touches(phone)).toEqual([]);
  });

  it("the stream's input settings hold: a rate over maxEventsPerSecond is cut, and disabled input reaches nothing", async () => {
    const limited = await startPhone({ input: { maxEventsPerSecond: 50 } });
    const fast = await viewer(limited, CONTROL_TOKEN);
    await waitUntil('the data channel', () => fast.channel?.readyState === 'open');
    fast.sendTouch(TouchAction.Down, 0.5, 0);
    for (let i = 0; i < 200; i++) fast.sendTouch(TouchAction.Move, 0.5, i / 200);
    const overRate = 'cloudphone_webrtc_viewer_messages_refused_total{reason="rate"}';
    await waitFor('refusals over the rate', async () => ((await limited.metric(overRate)) >= 150 ? true : undefined));
    // A burst of a fifth of a second's worth (10, the Down among them), and what refilled while the 200 arrived.
    await waitUntil('the touches let through', () => touches(limited).length >= 10);
    expect(touches(limited).length).toBeLessThan(201 - 150 + 1);

    const disabled = await startPhone({ input: { enabled: false } });
    const control = await viewer(disabled, CONTROL_TOKEN);
    await waitUntil('the data channel', () => control.channel?.readyState === 'open');
    for (let i = 0; i < 5; i++) control.sendTouch(TouchAction.Down, 0.5, 0.5);
    const off = 'cloudphone_webrtc_viewer_messages_refused_total{reason="disabled"}';
    await waitFor('5 refusals', async () => ((await disabled.metric(off)) >= 5 ? true : undefined), 10_000);
    expect(touches(disabled)).toEqual([]);
  });

  it('a control viewer that leaves holding a finger and a key lets go of both on the phone', async () => {
    const phone = await startPhone();
    const v = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('the data channel', () => v.channel?.readyState === 'open');
    v.sendTouch(TouchAction.Down, 0.3, 0.4);
    v.sendTouch(TouchAction.Move, 0.35, 0.45);
    v.sendKey(KeyAction.Down, 59); // shift
    await waitUntil('three events at the phone', () => touches(phone).length >= 3);
    await v.close();
    await waitUntil('the finger and the key let go', () => touches(phone).length >= 5);
    expect(touches(phone).slice(3)).toEqual([
      expect.objectContaining({ kind: 'touch', action: TouchAction.Cancel, pointerId: 0 }),
      expect.objectContaining({ kind: 'key', action: KeyAction.Up, keycode: 59 }),
    ]);
    expect(touches(phone)[3]?.x).toBeCloseTo(0.35, 5);
    expect(await phone.metric('cloudphone_input_released_total')).toBe(2);
  });

  it('two control viewers never move the same finger on the phone', async () => {
    const phone = await startPhone();
    const first = await viewer(phone, CONTROL_TOKEN);
    const second = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('both data channels', () => [first, second].every((v) => v.channel?.readyState === 'open'));
    first.sendTouch(TouchAction.Down, 0.1, 0.1);
    await waitUntil('the first finger', () => touches(phone).length >= 1);
    second.sendTouch(TouchAction.Down, 0.9, 0.9);
    await waitUntil('the second finger', () => touches(phone).length >= 2);
    second.sendTouch(TouchAction.Up, 0.9, 0.9);
    first.sendTouch(TouchAction.Move, 0.2, 0.2);
    await waitUntil('four touches', () => touches(phone).length >= 4);
    const fingers = touches(phone).map((e) => [e.action, e.pointerId, e.x]);
    expect(fingers.slice(0, 2)).toEqual([
      [TouchAction.Down, 0, expect.closeTo(0.1, 5)],
      [TouchAction.Down, 1, expect.closeTo(0.9, 5)],
    ]);
    expect(fingers.slice(2)).toContainEqual([TouchAction.Up, 1, expect.closeTo(0.9, 5)]);
    expect(fingers.slice(2)).toContainEqual([TouchAction.Move, 0, expect.closeTo(0.2, 5)]);
  });

  it('a viewer over its input rate still lifts its finger: only Moves are cut', async () => {
    const phone = await startPhone({ input: { maxEventsPerSecond: 50 } });
    const v = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('the data channel', () => v.channel?.readyState === 'open');
    v.sendTouch(TouchAction.Down, 0.5, 0);
    for (let i = 1; i <= 100; i++) v.sendTouch(TouchAction.Move, 0.5, i / 100);
    v.sendTouch(TouchAction.Up, 0.5, 1);
    await waitUntil('the Up at the phone', () => touches(phone).some((e) => e.action === TouchAction.Up));
    expect(await phone.metric('cloudphone_webrtc_viewer_messages_refused_total{reason="rate"}')).toBeGreaterThan(50);
  });

  it('a phone too busy to read input loses no press or release: they wait in order, Moves merged', async () => {
    const phone = await startPhone();
    const v = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('the data channel', () => v.channel?.readyState === 'open');
    // Paused too: while it publishes frames, the C library reads the socket and drops its oldest Moves to make
    // room (by design), so the socket might never fill and nothing would wait in the sidecar to merge.
    phone.simulator.command('pause');
    phone.simulator.command('hold-input');
    await waitUntil('input held', () => phone.simulator.events.some((e) => e.event === 'input-held'));
    v.sendTouch(TouchAction.Down, 0.5, 0);
    // 1200 Moves at 1200 a second (the input rate allows 1500), far more than the phone's socket holds.
    const moves = 1200;
    for (let batch = 0; batch < 4; batch++) {
      for (let i = 1; i <= moves / 4; i++) v.sendTouch(TouchAction.Move, 0.5, (batch * (moves / 4) + i) / moves);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    v.sendTouch(TouchAction.Up, 0.5, 1);
    v.sendKey(KeyAction.Down, 4);
    v.sendKey(KeyAction.Up, 4);
    await waitFor('input merged while the phone is busy', async () =>
      (await phone.metric('cloudphone_input_merged_total')) > 0 ? true : undefined,
    );
    phone.simulator.command('take-input');
    phone.simulator.command('resume');
    await waitUntil('the key-up at the phone', () =>
      touches(phone).some((e) => e.kind === 'key' && e.action === KeyAction.Up),
    );
    expect(
      touches(phone)
        .filter((e) => e.action !== TouchAction.Move || e.kind !== 'touch')
        .map((e) => [e.kind, e.action]),
    ).toEqual([
      ['touch', TouchAction.Down],
      ['touch', TouchAction.Up],
      ['key', KeyAction.Down],
      ['key', KeyAction.Up],
    ]);
    const path = touches(phone)
      .filter((e) => e.kind === 'touch')
      .map((e) => Number(e.y));
    for (let i = 1; i < path.length; i++) expect(path[i]).toBeGreaterThanOrEqual(path[i - 1] ?? 0);
    expect(await phone.metric('cloudphone_webrtc_viewer_messages_refused_total{reason="phone"}')).toBe(0);
  });

  it('a rotated token ends the sessions it opened, letting go of what they held; others stay', async () => {
    const phone = await startPhone();
    const control = await viewer(phone, CONTROL_TOKEN);
    const watcher = await viewer(phone, VIEWER_TOKEN);
    await waitUntil('both data channels', () => [control, watcher].every((v) => v.channel?.readyState === 'open'));
    control.sendTouch(TouchAction.Down, 0.6, 0.6);
    await waitUntil('the finger down', () => touches(phone).length >= 1);
    writeFileSync(join(phone.tokens, 'control'), 'rotated-control-token-0123456789');
    await waitUntil('the control session to end', () => phone.sidecar.viewers?.count === 1);
    expect(phone.sidecar.viewers?.sessions().map((session) => session.role)).toEqual(['view']);
    await waitUntil('the finger let go', () => touches(phone).length >= 2);
    expect(touches(phone)[1]).toMatchObject({ kind: 'touch', action: TouchAction.Cancel, pointerId: 0 });
    expect(await phone.metric('cloudphone_webrtc_viewers_revoked_total')).toBe(1);
    // The old token opens nothing now; the new one does.
    await expect(viewer(phone, CONTROL_TOKEN)).rejects.toThrow('401');
    await viewer(phone, 'rotated-control-token-0123456789');
  });

  it("sends pings and frame timings on the viewer's unordered stats channel, keeping the input channel for input", async () => {
    const phone = await startPhone();
    const v = await WeriftViewer.connect({
      base: phone.base,
      token: CONTROL_TOKEN,
      width: WIDTH,
      height: HEIGHT,
      statsChannel: true,
    });
    cleanups.push(() => v.close());
    await waitUntil('pings and frame timings on the stats channel', () =>
      [Body.Ping, Body.FrameTiming].every((body) => v.received.stats.includes(body)),
    );
    // The first ping may go out as the input channel opens, before the stats channel is known; no more after.
    expect(v.received.input[0]).toBe(Body.Session);
    expect(v.received.input.slice(1).filter((body) => body !== Body.Ping)).toEqual([]);
    expect(v.received.input.length).toBeLessThanOrEqual(2);
    // Input on the lossy channel is refused; on the input channel it goes through.
    v.statsChannel?.send(touchMessage(TouchAction.Down, 0.5, 0.5));
    const invalid = 'cloudphone_webrtc_viewer_messages_refused_total{reason="invalid"}';
    await waitFor('the refusal', async () => ((await phone.metric(invalid)) === 1 ? true : undefined));
    v.sendTouch(TouchAction.Down, 0.5, 0.5);
    await waitUntil('the touch at the phone', () => touches(phone).length === 1);
  });

  it('hostile data-channel messages are refused one by one, and the stream goes on', async () => {
    const phone = await startPhone();
    const v = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('the data channel and 10 frames', () => v.channel?.readyState === 'open' && frames(v).length >= 10);
    v.send(Buffer.from('not a flatbuffer at all'));
    v.send(Buffer.alloc(2000, 7));
    v.sendTouch(TouchAction.Down, 1.5, 0.5);
    v.sendTouch(TouchAction.Down, Number.NaN, 0.5);
    v.channel?.send('a text message');
    const invalid = 'cloudphone_webrtc_viewer_messages_refused_total{reason="invalid"}';
    await waitFor('4 invalid messages', async () => ((await phone.metric(invalid)) >= 4 ? true : undefined), 10_000);
    expect(await phone.metric('cloudphone_webrtc_viewer_messages_refused_total{reason="text"}')).toBe(1);
    const before = frames(v).length;
    await waitUntil('the stream to go on', () => frames(v).length >= before + 10);
    expect(touches(phone)).toEqual([]);
  });

  it('answers with an H.264 level that fits the stream: 1080x2400 needs more than the 3.1 viewers offer', async () => {
    const phone = await startWhepPhone({ width: 1080, height: 2400, fps: 30 });
    cleanups.push(() => phone.stop());
    await waitUntil('the parameter sets', () => phone.sidecar.pipeline.parameterSets().length > 0);
    const sent = spsLevel(phone.sidecar.pipeline.parameterSets());
    expect(sent).toBeGreaterThan(0x1f);
    const answer = await postBareOffer(phone, VIEWER_TOKEN, false);
    expect(answer.status).toBe(201);
    // The viewer's profile (constrained baseline), with the level of what is sent.
    expect(/profile-level-id=([0-9a-f]{6})/.exec(await answer.text())?.[1]).toBe(`42e0${(sent ?? 0).toString(16)}`);
  });

  it('refuses bad WHEP requests with a status and a reason', async () => {
    const phone = await startPhone({ whep: { maxViewers: 1 } });
    const base = phone.base;
    const post = (token: string | undefined, type: string, body: string): Promise<Response> =>
      whepRequest(base, 'POST', '/whep', { token, type, body });
    const noToken = await post(undefined, 'application/sdp', 'v=0');
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get('www-authenticate')).toContain('Bearer');
    expect((await post('wrong-token-0123456789', 'application/sdp', 'v=0')).status).toBe(401);
    expect((await post(VIEWER_TOKEN, 'text/plain', 'v=0')).status).toBe(415);
    // With a control token: a view-only one gets 503 here before its offer is read (maxViewers 1 keeps the
    // one slot for a control viewer).
    const notSdp = await post(CONTROL_TOKEN, 'application/sdp', 'hello');
    expect(notSdp.status).toBe(400);
    expect(await notSdp.text()).toContain('not an SDP offer');
    const vp8 = await post(CONTROL_TOKEN, 'application/sdp', OFFER_WITHOUT_H264);
    expect(vp8.status).toBe(406);
    expect(await vp8.text()).toContain('H.264');
    expect((await post(VIEWER_TOKEN, 'application/sdp', `v=0\r\n${'a=x\r\n'.repeat(20_000)}`)).status).toBe(413);
    const unknown = '/whep/sessions/00000000-0000-4000-8000-000000000000';
    expect((await whepRequest(base, 'DELETE', unknown, { token: VIEWER_TOKEN })).status).toBe(404);
    expect((await whepRequest(base, 'GET', '/whep', { token: VIEWER_TOKEN })).status).toBe(405);

    const v = await viewer(phone, CONTROL_TOKEN);
    const full = await WeriftViewer.connect({ base, token: VIEWER_TOKEN, width: WIDTH, height: HEIGHT }).catch(
      (error: unknown) => String(error),
    );
    expect(full).toContain('503');
    // Only the role that made a session may change or end it.
    expect((await whepRequest(base, 'DELETE', v.sessionUrl, { token: VIEWER_TOKEN })).status).toBe(403);
    const trickle = await whepRequest(base, 'PATCH', v.sessionUrl, {
      token: CONTROL_TOKEN,
      type: 'application/trickle-ice-sdpfrag',
      body: 'a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n',
    });
    expect(trickle.status).toBe(204);
    // A candidate libdatachannel cannot parse, or one naming a host to look up: the viewer's fault, said so.
    for (const [candidate, reason] of [
      ['a=candidate:garbage', 'no valid component id'],
      ['a=candidate:1 1 udp 2130706431 attacker.example 9 typ host', 'must be an IP address'],
    ]) {
      const refused = await whepRequest(base, 'PATCH', v.sessionUrl, {
        token: CONTROL_TOKEN,
        type: 'application/trickle-ice-sdpfrag',
        body: `a=mid:0\r\n${candidate}\r\n`,
      });
      expect(refused.status).toBe(400);
      expect(await refused.text()).toContain(reason);
    }
    expect((await whepRequest(base, 'DELETE', v.sessionUrl, { token: CONTROL_TOKEN })).status).toBe(200);
    await waitUntil('the viewer to be gone', () => phone.sidecar.viewers?.count === 0);
    expect(await phone.metric('cloudphone_webrtc_viewers{role="control"}')).toBe(0);
  });

  it('announces STUN and TURN servers to authenticated clients only', async () => {
    const phone = await startPhone({
      webrtc: {
        iceServers: [
          { urls: ['stun:stun.example.net:3478'] },
          { urls: ['turn:turn.example.net:3478?transport=udp'], username: 'phone', credentialFile: '{tokens}/turn' },
        ],
      },
    });
    const options = await whepRequest(phone.base, 'OPTIONS', '/whep', { token: VIEWER_TOKEN });
    expect(options.status).toBe(204);
    expect(options.headers.get('accept-post')).toBe('application/sdp');
    const links = options.headers.get('link') ?? '';
    expect(links).toContain('<stun:stun.example.net:3478>; rel="ice-server"');
    expect(links).toContain(
      '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="phone"; credential="turn-secret"; credential-type="password"',
    );
    const anonymous = await whepRequest(phone.base, 'OPTIONS', '/whep');
    expect(anonymous.headers.get('link')).toBeNull();
  });
});

describe('one viewer cannot spoil it for the others', () => {
  /** Keyframes the encoder made while `during` ran. */
  async function keyframesDuring(phone: Phone, during: () => Promise<void>): Promise<number> {
    const before = phone.sidecar.stats().keyframes;
    await during();
    return phone.sidecar.stats().keyframes - before;
  }

  /** Sends a PLI every 20 ms for the given time, as a broken or hostile browser might. */
  async function floodPictureLoss(v: WeriftViewer, milliseconds: number): Promise<void> {
    for (let t = 0; t < milliseconds; t += 20) {
      await v.sendPictureLoss();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it("a view-only viewer's PLI flood adds no keyframe to the periodic ones the control viewer gets", async () => {
    const phone = await startPhone({ keyframeIntervalSeconds: 2 });
    const control = await viewer(phone, CONTROL_TOKEN);
    const flooder = await viewer(phone, VIEWER_TOKEN);
    await waitUntil('both viewers decoding', () => frames(control).length >= 10 && frames(flooder).length >= 10);
    const keyframes = await keyframesDuring(phone, () => floodPictureLoss(flooder, 6000));
    // 6 s of a 2 s period: 3, or 2 or 4 by where the window falls. (Before: one every 250 ms, 26.)
    expect(keyframes).toBeGreaterThanOrEqual(2);
    expect(keyframes).toBeLessThanOrEqual(4);
    expect(
      await phone.metric('cloudphone_webrtc_keyframe_wishes_total{role="view",outcome="over-budget"}'),
    ).toBeGreaterThan(100);
    expect(await phone.metric('cloudphone_webrtc_keyframe_wishes_total{role="control",outcome="requested"}')).toBe(1);
    const seen = frames(control).length;
    await waitUntil('the control viewer still decoding', () => frames(control).length >= seen + 30);
  });

  it("a control viewer's PLI flood is held to its budget, and a view-only viewer still gets a picture without periodic keyframes", async () => {
    const phone = await startPhone({ keyframeIntervalSeconds: 0 });
    const control = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('the control viewer decoding', () => frames(control).length >= 10);
    const keyframes = await keyframesDuring(phone, () => floodPictureLoss(control, 6000));
    // One a second (and the bucket's second token): at most 8 in 6 s. (Before: 24.)
    expect(keyframes).toBeGreaterThanOrEqual(5);
    expect(keyframes).toBeLessThanOrEqual(8);
    // Without periodic keyframes a view-only joiner's wish is served once the stream has made none for 2 s.
    const late = await viewer(phone, VIEWER_TOKEN);
    await waitUntil('the view-only viewer decoding', () => frames(late).length >= 10);
    expect(await phone.metric('cloudphone_webrtc_keyframe_wishes_total{role="view",outcome="waits"}')).toBe(1);
  });

  it('keeps the last slot for a control viewer', async () => {
    const phone = await startPhone({ whep: { maxViewers: 3 } });
    await viewer(phone, VIEWER_TOKEN);
    await viewer(phone, VIEWER_TOKEN);
    const third = await WeriftViewer.connect({
      base: phone.base,
      token: VIEWER_TOKEN,
      width: WIDTH,
      height: HEIGHT,
    }).catch((error: unknown) => String(error));
    expect(third).toContain('503');
    expect(third).toContain('kept for a control viewer');
    const control = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('the control viewer decoding', () => frames(control).length >= 10);
  });

  it('gives the slot of a session that never connects back after 10 s', async () => {
    const phone = await startPhone({ whep: { maxViewers: 1 } });
    expect((await postBareOffer(phone, CONTROL_TOKEN, true)).status).toBe(201);
    expect(phone.sidecar.viewers?.count).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    expect(phone.sidecar.viewers?.count).toBe(0);
    const control = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('the next viewer decoding', () => frames(control).length >= 10);
  });

  it('a control viewer flooding past every rate has what it holds lifted on the phone, not left stuck', async () => {
    const phone = await startPhone({ input: { maxEventsPerSecond: 50 } });
    const v = await viewer(phone, CONTROL_TOKEN);
    await waitUntil('the data channel', () => v.channel?.readyState === 'open');
    v.sendTouch(TouchAction.Down, 0.5, 0.5);
    await waitUntil('the Down at the phone', () => touches(phone).some((e) => e.action === TouchAction.Down));
    // 2000 at once: far past the 260 a second (and a second's burst) every kind together allows.
    const pong = Buffer.from(new PlayerMessages().pong(1, 1n, 1));
    for (let i = 0; i < 2000; i++) v.send(pong);
    await waitUntil('the finger lifted at the phone', () =>
      touches(phone).some((e) => e.action === TouchAction.Up || e.action === TouchAction.Cancel),
    );
  });

  it('holds every kind of data-channel message to a rate per viewer, and the stream goes on', async () => {
    const phone = await startPhone();
    const v = await viewer(phone, VIEWER_TOKEN);
    await waitUntil('the viewer decoding', () => frames(v).length >= 10);
    const player = new PlayerMessages();
    const rate = 'cloudphone_webrtc_viewer_messages_refused_total{reason="rate"}';
    for (const [kind, message] of [
      ['render reports', () => player.renderReport(90_000, 1_000_000)],
      ['pongs', () => player.pong(1, 1n, 1)],
      [
        'stats',
        () =>
          player.stats({
            framesDecoded: 1,
            framesDropped: 0,
            fps: 30,
            jitterMs: 1,
            packetsLost: 0,
            rttMs: 1,
            bitrateKbps: 1,
          }),
      ],
    ] as const) {
      const before = await phone.metric(rate);
      for (let i = 0; i < 400; i++) v.send(Buffer.from(message()));
      await waitFor(`the ${kind} over the rate refused`, async () =>
        (await phone.metric(rate)) > before ? true : undefined,
      );
    }
    const seen = frames(v).length;
    await waitUntil('the viewer still decoding', () => frames(v).length >= seen + 30);
  });
});
