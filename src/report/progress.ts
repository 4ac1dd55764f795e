/**
 * Progress bars on long work (cli-progress). Quiet when stderr is not a terminal or in --json mode,
 * where one line per epoch goes to stderr instead, so logs stay readable.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  start(total: number, label: string): void;
  update(value: number, fields: Record<string, string | number>): void;
  stop(): void;
  log(line: string): void;
}

export function makeProgress(opts: { enabled: boolean; format?: string }): Progress {
  const tty = process.stderr.isTTY && opts.enabled;
  if (!tty) {
    return { start() {}, update() {}, stop() {}, log: (l) => { if (opts.enabled) process.stderr.write(l + '\n'); } };
  }
  const bar = new cliProgress.SingleBar({
    format: opts.format ?? '{label} [{bar}] {value}/{total} | loss {loss} | acc {acc} | {ips} img/s | eta {eta_formatted}',
    hideCursor: true, stream: process.stderr, clearOnComplete: true, etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  let active = false;
  return {
    start(total, label) { bar.start(total, 0, { label, loss: '-', acc: '-', ips: '-' }); active = true; },
    update(v, f) { bar.update(v, f); },
    stop() { if (active) bar.stop(); active = false; },
    log(line) {
      if (active) { bar.stop(); active = false; }
      process.stderr.write(line + '\n');
    },
  };
}
