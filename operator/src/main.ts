// Entry point: node operator/src/main.ts [flags] (npm run operator adds --dev for a local control plane).

import { parseConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { rootLogger } from './log.ts';
import { startOperator } from './operator.ts';

try {
  const operator = await startOperator(parseConfig(process.argv.slice(2), process.env), rootLogger);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    rootLogger.info({ signal }, 'stopping');
    operator.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        rootLogger.error({ err: error }, 'stopping failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.on('SIGINT', () => {
    stop('SIGINT');
  });
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`cloudphone-operator: ${error.message}`);
    process.exit(2);
  }
  rootLogger.fatal({ err: error }, 'operator failed to start');
  process.exit(1);
}
