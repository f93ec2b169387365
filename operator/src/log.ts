// The operator's root logger. Each module takes a child with its name; messages are constants and the
// variable parts are fields, so logs can be searched and counted.

import { pino, type Logger } from 'pino';

export const rootLogger: Logger = pino({
  name: 'cloudphone-operator',
  level: process.env.LOG_LEVEL ?? 'info',
  // Tokens and private keys never belong in a log line, whoever passes them.
  redact: {
    paths: ['token', '*.token', 'authorization', '*.authorization', 'keyPem', '*.keyPem', 'caKeyPem', '*.caKeyPem'],
    censor: '[redacted]',
  },
});

export function moduleLogger(module: string, parent: Logger = rootLogger): Logger {
  return parent.child({ module });
}
