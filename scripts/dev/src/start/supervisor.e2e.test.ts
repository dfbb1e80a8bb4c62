import { describe, expect, it } from '@jest/globals';
import { waitFor } from './ports.ts';
import { Supervisor } from './supervisor.ts';

const node = process.execPath;
// A child that exits 0 on SIGTERM, like the real processes.
const GRACEFUL = `process.on('SIGTERM', () => setTimeout(() => process.exit(0), 50)); setInterval(() => {}, 1000);`;
// A child that ignores SIGTERM, so only SIGKILL ends it.
const STUBBORN = `process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);`;

describe('Supervisor', () => {
  it('restarts a child that dies and stops everything cleanly on request', async () => {
    const lines: string[] = [];
    const supervisor = new Supervisor((line) => lines.push(line));
    supervisor.start({ name: 'svc', command: node, args: ['-e', GRACEFUL], env: process.env });
    expect(await waitFor(async () => supervisor.pid('svc') !== undefined, 5_000)).toBe(true);
    const first = supervisor.pid('svc')!;
    process.kill(first, 'SIGKILL');
    expect(await waitFor(async () => (supervisor.pid('svc') ?? first) !== first, 10_000)).toBe(true);
    expect(lines.some((l) => /svc: exited \(SIGKILL\).*restarting in 1 s/.test(l))).toBe(true);
    await new Promise((r) => setTimeout(r, 500)); // let the new child install its SIGTERM handler
    const reports = await supervisor.stop(5_000);
    expect(reports).toEqual([expect.objectContaining({ name: 'svc', code: 0, clean: true })]);
  });

  it('kills a child that ignores SIGTERM at the deadline and reports it as unclean', async () => {
    const supervisor = new Supervisor(() => {});
    supervisor.start({ name: 'stubborn', command: node, args: ['-e', STUBBORN], env: process.env });
    await waitFor(async () => supervisor.pid('stubborn') !== undefined, 5_000);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const [report] = await supervisor.stop(500);
    expect(report).toMatchObject({ name: 'stubborn', signal: 'SIGKILL', clean: false });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
