// Prints the README's encode benchmark table from bench/results/encode.json, so the table is the run's figures
// and nothing typed by hand:
//
//   node bench/tables.ts

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Result } from './encode.ts';

const rows = JSON.parse(readFileSync(join(import.meta.dirname, 'results/encode.json'), 'utf8')) as Result[];
const ms = (value: number): string => `${value.toFixed(1)} ms`;
const lines = [
  '| size @ fps     | pipeline   | latency p50 | beyond SRT | latency p99 | CPU per frame | dropped | fps out |',
  '| -------------- | ---------- | ----------- | ---------- | ----------- | ------------- | ------- | ------- |',
];
let size = '';
for (const row of rows) {
  const label = `${String(row.width)}x${String(row.height)} @ ${String(row.fps)}`;
  lines.push(
    `| ${(label === size ? '' : label).padEnd(14)} | ${row.pipeline.padEnd(10)} | ${ms(row.latency_p50_ms).padEnd(11)} | ` +
      `${ms(row.beyond_srt_p50_ms).padEnd(10)} | ${ms(row.latency_p99_ms).padEnd(11)} | ` +
      `${`${row.cpu_ms_per_frame.toFixed(2)} ms`.padEnd(13)} | ${(row.pipeline === 'limit' ? '–' : String(row.dropped)).padEnd(7)} | ` +
      `${(row.fps_out?.toFixed(1) ?? '–').padEnd(7)} |`,
  );
  size = label;
}
process.stdout.write(`${lines.join('\n')}\n`);
