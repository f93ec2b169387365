// The sidecars' report endpoint. A sidecar proves who it is with its pod's projected service-account token,
// bound to the operator's audience; the operator checks it with a TokenReview (so sidecars need no permission
// to write anything in the cluster), and keeps the latest report of each pod for the stream's status.

import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AuthenticationV1Api, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { SidecarReport } from '../../../generated/ts/api-types.ts';
import { ValidationError, type SchemaValidator } from '../../../schemas/runtime/validator.ts';
import type { HttpReply } from '../https-endpoints.ts';
import { RELAYED_HEADER } from './report-relay.ts';
import {
  CLAIM_ACCESS_ANNOTATION,
  CLAIM_TOKEN_DIGEST_ANNOTATION,
  REPORT_TOKEN_AUDIENCE,
  STREAM_LABEL,
} from '../labels.ts';

export interface ReceivedReport {
  report: SidecarReport;
  receivedAt: number;
}

const EMPTY: ReadonlyMap<string, ReceivedReport> = new Map<string, ReceivedReport>();

/** The latest report of each pod, by stream. */
export class ReportStore {
  private readonly byStream = new Map<string, Map<string, ReceivedReport>>();
  /** How long a report speaks for its phone (the streams' status and the pools' busy phones alike). */
  readonly freshMs: number;

  /** @param freshMs how long a report speaks for its phone: a sidecar silent for longer is not heard. */
  constructor(freshMs = 30_000) {
    this.freshMs = freshMs;
  }

  /**
   * How many control viewers a pod's sidecar last reported, if it reported recently: the viewers of a sidecar
   * that died or lost its way to the operator are not counted, so they cannot keep its phone busy for ever.
   */
  controlViewers(namespace: string, stream: string, pod: string, now = Date.now()): number {
    const received = this.byStream.get(`${namespace}/${stream}`)?.get(pod);
    return received && now - received.receivedAt <= this.freshMs ? received.report.controlViewers : 0;
  }

  put(report: SidecarReport, now = Date.now()): void {
    const key = `${report.stream.namespace}/${report.stream.name}`;
    let pods = this.byStream.get(key);
    if (!pods) this.byStream.set(key, (pods = new Map<string, ReceivedReport>()));
    pods.set(report.pod, { report, receivedAt: now });
  }

  forStream(namespace: string, name: string): ReadonlyMap<string, ReceivedReport> {
    return this.byStream.get(`${namespace}/${name}`) ?? EMPTY;
  }

  forgetStream(namespace: string, name: string): void {
    this.byStream.delete(`${namespace}/${name}`);
  }

  forgetPod(namespace: string, stream: string, pod: string): void {
    this.byStream.get(`${namespace}/${stream}`)?.delete(pod);
  }
}

interface Identity {
  namespace: string;
  pod: string;
}

export interface SidecarReportsOptions {
  authentication: AuthenticationV1Api;
  validator: SchemaValidator;
  store: ReportStore;
  pod: (namespace: string, name: string) => V1Pod | undefined;
  onReport: (report: SidecarReport) => void;
  /** Called with a report a sidecar sent to this replica (not one another replica passed on), once accepted. */
  relay?: (authorization: string, body: Buffer) => void;
  log: Logger;
  /** How long a successful TokenReview is trusted for the same token. */
  tokenCacheMs?: number;
}

export class SidecarReports {
  private readonly o: Required<Omit<SidecarReportsOptions, 'relay'>> & Pick<SidecarReportsOptions, 'relay'>;
  private readonly tokens = new Map<string, { identity: Identity | undefined; until: number }>();
  /** Who sent each request admitted, until the request is gone. */
  private readonly identities = new WeakMap<IncomingMessage, Identity>();

  constructor(options: SidecarReportsOptions) {
    this.o = { tokenCacheMs: 60_000, ...options };
  }

  /**
   * Before the body: the bearer token must be a pod's, for the operator's audience. A request without one is
   * refused on its headers, so a stranger can make the operator read nothing.
   */
  admit = async (req: IncomingMessage): Promise<HttpReply | undefined> => {
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return { status: 401, body: { message: 'a bearer token is required' } };
    const identity = await this.authenticate(token);
    if (!identity) return { status: 401, body: { message: 'the token is not valid for this audience' } };
    this.identities.set(req, identity);
    return undefined;
  };

  /** POST /report, once admit() let it in (the route calls admit() on the headers, then this with the body). */
  handle = (req: IncomingMessage, body: Buffer): HttpReply => {
    const identity = this.identities.get(req);
    if (!identity) return { status: 401, body: { message: 'not authenticated' } };

    let report: SidecarReport;
    try {
      report = this.o.validator.parse('SidecarReport', JSON.parse(body.toString('utf8')));
    } catch (error) {
      if (error instanceof ValidationError) return { status: 400, body: { message: error.message } };
      return { status: 400, body: { message: 'the body is not JSON' } };
    }
    // A pod may report only about itself, and only for the stream whose sidecar it carries.
    if (identity.namespace !== report.stream.namespace || identity.pod !== report.pod) {
      return { status: 403, body: { message: `the token belongs to pod ${identity.namespace}/${identity.pod}` } };
    }
    const pod = this.o.pod(identity.namespace, identity.pod);
    if (pod?.metadata?.labels?.[STREAM_LABEL] !== report.stream.name) {
      return {
        status: 403,
        body: { message: `pod ${identity.pod} carries no sidecar of stream ${report.stream.name}` },
      };
    }
    this.o.store.put(report);
    this.o.onReport(report);
    if (req.headers[RELAYED_HEADER] === undefined) this.o.relay?.(req.headers.authorization ?? '', body);
    // The reply tells the sidecar which claim tokens its phone takes now (digests only; none when unclaimed).
    const digest = pod.metadata.annotations?.[CLAIM_TOKEN_DIGEST_ANNOTATION];
    const access = pod.metadata.annotations?.[CLAIM_ACCESS_ANNOTATION];
    const claimTokens =
      digest && /^[0-9a-f]{64}$/.test(digest) && (access === 'view' || access === 'control')
        ? [{ access, sha256: digest }]
        : [];
    return { status: 200, body: { claimTokens } };
  };

  private async authenticate(token: string): Promise<Identity | undefined> {
    const digest = createHash('sha256').update(token).digest('hex');
    const cached = this.tokens.get(digest);
    if (cached && cached.until > Date.now()) return cached.identity;
    // Refused tokens are remembered too (briefly), so a client repeating a bad token costs one TokenReview.
    const remember = (identity: Identity | undefined, forMs: number): Identity | undefined => {
      if (this.tokens.size > 10_000) this.tokens.clear(); // bounded: a flood of distinct tokens cannot grow it
      this.tokens.set(digest, { identity, until: Date.now() + forMs });
      return identity;
    };
    const review = await this.o.authentication.createTokenReview({
      body: { spec: { token, audiences: [REPORT_TOKEN_AUDIENCE] } },
    });
    const status = review.status;
    const extra = status?.user?.extra ?? {};
    const pod = extra['authentication.kubernetes.io/pod-name']?.[0];
    const namespace = /^system:serviceaccount:([^:]+):/.exec(status?.user?.username ?? '')?.[1];
    if (!status?.authenticated || !status.audiences?.includes(REPORT_TOKEN_AUDIENCE) || !pod || !namespace) {
      this.o.log.info({ authenticated: status?.authenticated ?? false }, 'refused a sidecar report token');
      return remember(undefined, 10_000);
    }
    return remember({ namespace, pod }, this.o.tokenCacheMs);
  }
}
