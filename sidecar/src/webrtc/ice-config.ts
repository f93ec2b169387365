// ICE for a sidecar in Kubernetes: the STUN/TURN servers from the config (for the sidecar's own
// PeerConnections, in libdatachannel's form, and for viewers, as WHEP Link headers), and the single fixed UDP
// port option (libdatachannel's ICE UDP mux: every viewer on one port, for a hostPort or a UDP Service).
// ICE-TCP is not offered: node-datachannel's libdatachannel is built on libjuice, which has no ICE-TCP; the
// setting is accepted and the sidecar says so at start (use TURN over TCP/TLS instead).
//
// TURN credentials: a long-term user name and credential from the config go to everyone as they are; with a
// TURN REST shared secret (coturn's use-auth-secret) each session gets its own, made here and valid for a
// while: user name "<expiry unix seconds>:<session>", credential base64(HMAC-SHA1(secret, user name)). The
// TURN server checks both and refuses one past its expiry; the secret itself never leaves the sidecar.

import { createHmac } from 'node:crypto';
import type { RtcConfig, IceServer as NdcIceServer } from 'node-datachannel';

export interface IceServerSetting {
  urls: string[];
  username?: string;
  /** Read from the credential file, never logged. */
  credential?: string;
  /** The TURN REST shared secret, read from its file, never logged. */
  restSecret?: string;
  /** How long a TURN REST credential is valid (default a day). */
  credentialTtlSeconds?: number;
}

const DEFAULT_REST_TTL_SECONDS = 86_400;

/**
 * The user name and credential one session uses with a server: its own under the TURN REST scheme, else the
 * configured ones. session: the WHEP session id, or any id for one connection (no colon).
 */
export function turnCredentials(
  server: IceServerSetting,
  session: string,
  nowMs = Date.now(),
): { username?: string; credential?: string } {
  if (server.restSecret === undefined) return { username: server.username, credential: server.credential };
  const expiry = Math.floor(nowMs / 1000) + (server.credentialTtlSeconds ?? DEFAULT_REST_TTL_SECONDS);
  const username = `${String(expiry)}:${session}`;
  return { username, credential: createHmac('sha1', server.restSecret).update(username).digest('base64') };
}

export interface IceSettings {
  servers: IceServerSetting[];
  udpPort?: number;
}

function quoted(text: string): string {
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** WHEP/WHIP Link headers (RFC 9725 section 4.6) announcing the servers to an authenticated viewer, for one session. */
export function iceLinkHeaders(servers: readonly IceServerSetting[], session: string): string[] {
  const links: string[] = [];
  for (const server of servers) {
    const { username, credential } = turnCredentials(server, session);
    for (const url of server.urls) {
      let link = `<${url}>; rel="ice-server"`;
      if (url.startsWith('turn') && username !== undefined && credential !== undefined)
        link += `; username=${quoted(username)}; credential=${quoted(credential)}; credential-type="password"`;
      links.push(link);
    }
  }
  return links;
}

/** One stun:/turn:/turns: URL as libdatachannel takes it; undefined for what it cannot use (stuns:). */
export function libdatachannelIceServer(
  url: string,
  credentials: { username?: string; credential?: string },
): NdcIceServer | undefined {
  const match = /^(stun|turn|turns):(\[[0-9a-fA-F:.]+\]|[^:?[\]]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/.exec(url);
  if (!match?.[1] || !match[2]) return undefined;
  const scheme = match[1];
  const hostname = match[2].replace(/^\[|\]$/g, '');
  const port = match[3] ? Number(match[3]) : scheme === 'turns' ? 5349 : 3478;
  if (scheme === 'stun') return { hostname, port };
  return {
    hostname,
    port,
    username: credentials.username,
    password: credentials.credential,
    relayType: scheme === 'turns' ? 'TurnTls' : match[4] === 'tcp' ? 'TurnTcp' : 'TurnUdp',
  };
}

/** The sidecar's side of one connection (a viewer session, a WHIP attempt): session names its TURN REST credentials. */
export function rtcConfig(settings: IceSettings, session: string): RtcConfig {
  const iceServers: NdcIceServer[] = [];
  for (const server of settings.servers) {
    const credentials = turnCredentials(server, session);
    for (const url of server.urls) {
      const converted = libdatachannelIceServer(url, credentials);
      if (converted) iceServers.push(converted);
    }
  }
  const config: RtcConfig = { iceServers };
  if (settings.udpPort !== undefined) {
    config.enableIceUdpMux = true;
    config.portRangeBegin = settings.udpPort;
    config.portRangeEnd = settings.udpPort;
  }
  return config;
}
