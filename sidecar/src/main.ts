// The sidecar process: reads its config from CLOUDPHONE_SIDECAR_CONFIG (as the operator's webhook renders
// it) or from --config <file>, streams until SIGTERM or SIGINT, then stops cleanly.

import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { loadSidecarConfig } from './config.ts';
import { Sidecar } from './sidecar.ts';

const log = pino({ name: 'cloudphone-sidecar', level: process.env.LOG_LEVEL ?? 'info' });

function configText(): string {
  const flag = process.argv.indexOf('--config');
  const file = flag >= 0 ? process.argv[flag + 1] : undefined;
  if (file) return readFileSync(file, 'utf8');
  const text = process.env.CLOUDPHONE_SIDECAR_CONFIG;
  if (!text) throw new Error('set CLOUDPHONE_SIDECAR_CONFIG or pass --config <file>');
  return text;
}

async function main(): Promise<void> {
  const settings = loadSidecarConfig(configText(), {
    namespace: process.env.POD_NAMESPACE ?? 'default',
    pod: process.env.POD_NAME ?? 'local',
  });
  log.level = settings.config.logLevel ?? 'info';
  const sidecar = new Sidecar(settings, log);
  await sidecar.start();
  const stop = (): void => {
    sidecar.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  log.fatal(
    { error: error instanceof Error ? { name: error.name, message: error.message } : String(error) },
    'sidecar failed to start',
  );
  process.exit(1);
});
