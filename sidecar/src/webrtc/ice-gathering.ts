// Waiting for libdatachannel to finish gathering local ICE candidates, so that a description carries them all
// (neither the WHEP answer nor the WHIP offer can be trickled by the sidecar). Host candidates take
// milliseconds; a STUN or TURN server that does not answer must not hold the exchange past the timeout.

import type ndc from 'node-datachannel';

const GATHER_TIMEOUT_MS = 2000;

/** Listens first, then runs `start` (which sets a description and so starts gathering), then waits. */
export async function gatherAfter(pc: ndc.PeerConnection, start: () => void): Promise<void> {
  const gathered = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  start();
  await gathered;
}
