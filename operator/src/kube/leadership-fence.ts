// Fences the API calls of the work only a leader may do (reconciles, status, Events, webhook configurations).
// Each leadership term has an AbortSignal: a call made outside a term is refused before it is sent, and the calls
// still in flight when the term ends are aborted, so a leader that lost its Lease stops writing at once rather
// than when its hung connection gives up (issue: one leader at a time).

export class NotLeaderError extends Error {
  constructor() {
    super('not the leader: the call was not sent');
    this.name = 'NotLeaderError';
  }
}

export class LeadershipFence {
  private term: AbortController | undefined;

  /** Opens a term: fenced calls are allowed from now on. */
  begin(): void {
    this.term?.abort(new NotLeaderError());
    this.term = new AbortController();
  }

  /** Ends the term: calls in flight are aborted, new ones refused. */
  end(): void {
    this.term?.abort(new NotLeaderError());
    this.term = undefined;
  }

  get open(): boolean {
    return this.term !== undefined;
  }

  /** The current term's signal; throws NotLeaderError outside a term. */
  signal(): AbortSignal {
    if (!this.term) throw new NotLeaderError();
    return this.term.signal;
  }
}
