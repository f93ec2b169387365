// ICE for a sidecar in Kubernetes: the STUN/TURN servers from the config (for the sidecar's own
// PeerConnections, in libdatachannel's form, and for viewers, as WHEP Link headers), and the single fixed UDP
// port option (libdatachannel's ICE UDP mux: every viewer on one port, for a hostPort or a UDP Service).
// ICE-TCP is not offered: node-datachannel's libdatachannel is built on libjuice, which has no ICE-TCP; the
// setting is accepted and the sidecar says so at start (use TURN over TCP/TLS instead).

import type { RtcConfig, IceServer as NdcIceServer } from 'node-datachannel';

export interface IceServerSetting {
  urls: string[];
  username?: string;
  /** Read from the credential file, never logged. */
  credential?: string;
}

export interface IceSettings {
  servers: IceServerSetting[];
  udpPort?: number;
}

function quoted(text: string): string {
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** WHEP/WHIP Link headers (RFC 9725 section 4.6) announcing the servers to an authenticated viewer. */
export function iceLinkHeaders(servers: readonly IceServerSetting[]): string[] {
  const links: string[] = [];
  for (const server of servers) {
    for (const url of server.urls) {
      let link = `<${url}>; rel="ice-server"`;
      if (url.startsWith('turn') && server.username !== undefined && server.credential !== undefined)
        link += `; username=${quoted(server.username)}; credential=${quoted(server.credential)}; credential-type="password"`;
      links.push(link);
    }
  }
  return links;
}

/** One stun:/turn:/turns: URL as libdatachannel takes it; undefined for what it cannot use (stuns:). */
export function libdatachannelIceServer(url: string, server: IceServerSetting): NdcIceServer | undefined {
  const match = /^(stun|turn|turns):(\[[0-9a-fA-F:.]+\]|[^:?[\]]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/.exec(url);
  if (!match?.[1] || !match[2]) return undefined;
  const scheme = match[1];
  const hostname = match[2].replace(/^\[|\]$/g, '');
  const port = match[3] ? Number(match[3]) : scheme === 'turns' ? 5349 : 3478;
  if (scheme === 'stun') return { hostname, port };
  return {
    hostname,
    port,
    username: server.username,
    password: server.credential,
    relayType: scheme === 'turns' ? 'TurnTls' : match[4] === 'tcp' ? 'TurnTcp' : 'TurnUdp',
  };
}

export function rtcConfig(settings: IceSettings): RtcConfig {
  const iceServers: NdcIceServer[] = [];
  for (const server of settings.servers)
    for (const url of server.urls) {
      const converted = libdatachannelIceServer(url, server);
      if (converted) iceServers.push(converted);
    }
  const config: RtcConfig = { iceServers };
  if (settings.udpPort !== undefined) {
    config.enableIceUdpMux = true;
    config.portRangeBegin = settings.udpPort;
    config.portRangeEnd = settings.udpPort;
  }
  return config;
}
