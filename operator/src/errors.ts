// The operator's named errors. A reconcile that throws TerminalError is not retried: the problem is in the
// user's resource and is reported as a condition and an Event; anything else is retried with backoff.

export class TerminalError extends Error {
  override name = 'TerminalError';
  readonly reason: string;

  /** reason: a CamelCase condition/Event reason, e.g. InvalidSpec. */
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}
