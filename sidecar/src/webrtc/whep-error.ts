// The one error the WHEP endpoint answers with: an HTTP status and a reason a client can act on. The reason
// never contains what the client sent (a token, an SDP), only what was wrong with it.

export class WhepError extends Error {
  override name = 'WhepError';
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}
