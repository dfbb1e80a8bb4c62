// What a process really prints: a child Node process creates the logger as the services do and
// writes one line to its own stdout (the pretty transport runs in a worker thread and writes there
// itself, so only a real process shows it). Under `npm start` lines are pino-pretty's coloured
// text; with NODE_ENV=production they stay one JSON object per line whatever LOG_FORMAT asks.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';

const root = path.resolve(import.meta.dirname, '../../..');
const loggerModule = path.join(root, 'shared/src/logging/logger.ts');

function printOneLine(env: Record<string, string>): string {
  const script = `
    import { createLogger } from ${JSON.stringify(loggerModule)};
    const logger = createLogger({ name: 'api' });
    logger.info({ transferId: '42', password: 'hunter22' }, 'transfer posted');
    // The pretty transport flushes from its worker thread when the logger is done.
    logger.flush?.();
  `;
  const { PATH, HOME } = process.env;
  const result = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], {
    cwd: root,
    env: { PATH, HOME, LOG_LEVEL: 'info', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (result.status !== 0) throw new Error(`the logger process failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

describe('log format of a real process', () => {
  it('is pino-pretty under npm start (LOG_FORMAT=pretty): one coloured readable line, secrets still redacted', () => {
    const out = printOneLine({ NODE_ENV: 'development', LOG_FORMAT: 'pretty', FORCE_COLOR: '1' });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const line = lines[0] ?? '';
    expect(() => JSON.parse(line) as unknown).toThrow();
    // eslint-disable-next-line no-control-regex
    expect(line).toMatch(/\u001b\[\d+m/);
    // eslint-disable-next-line no-control-regex
    const plain = line.replace(/\u001b\[\d+m/g, '');
    expect(plain).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(api\): transfer posted/);
    expect(plain).toContain('"transferId":"42"');
    expect(plain).not.toContain('hunter22');
  });

  it('has no colour when NO_COLOR is set', () => {
    const out = printOneLine({ NODE_ENV: 'development', LOG_FORMAT: 'pretty', FORCE_COLOR: '1', NO_COLOR: '1' });
    expect(out).toContain('transfer posted');
    // eslint-disable-next-line no-control-regex
    expect(out).not.toMatch(/\u001b\[/);
  });

  it('is one JSON object per line in production, even when LOG_FORMAT asks for pretty', () => {
    for (const format of ['pretty', 'json']) {
      const lines = printOneLine({ NODE_ENV: 'production', LOG_FORMAT: format }).trim().split('\n');
      expect(lines).toHaveLength(1);
      const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
      expect(line).toMatchObject({ level: 'info', service: 'api', msg: 'transfer posted', transferId: '42', password: '[redacted]' });
      expect(typeof line.time).toBe('string');
    }
  });
});
