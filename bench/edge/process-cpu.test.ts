import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from '@jest/globals';
import { cpuBudget, cpuDelta, cpuSnapshot, groupOf, pgClientOf, postgresDelta, type CpuSnapshot } from './process-cpu.ts';

describe('groupOf', () => {
  const db = 'bank_bench_abc123';
  it.each([
    ['node --import ./services/api/src/instrument.ts services/api/src/main.ts', 'api'],
    ['node --import ./services/grpc/src/instrument.ts services/grpc/src/main.ts', 'grpc'],
    ['node services/worker/src/main.ts', 'worker'],
    [`postgres: postgres ${db} 127.0.0.1(51234) idle`, 'postgres'],
    [`postgres: postgres ${db} [local] SELECT`, 'postgres'],
    ['postgres: walwriter ', 'postgres'],
    ['postgres: checkpointer ', 'postgres'],
    [`postgres: 15/main: postgres ${db} 127.0.0.1(51234) idle`, 'postgres'],
    ['postgres: 15/main: walwriter ', 'postgres'],
    ['/usr/bin/redis-server 127.0.0.1:6379', 'redis'],
    ['npm start', 'other'],
    ['node --disable-warning=ExperimentalWarning scripts/dev/src/start/main.ts', 'other'],
  ])('%s is %s', (commandLine, group) => {
    expect(groupOf(commandLine, db, 1, 2)).toBe(group);
  });

  it("leaves out another database's backends and the rest of the machine", () => {
    expect(groupOf('postgres: postgres test 127.0.0.1(40000) idle', db, 1, 2)).toBeNull();
    expect(groupOf(`postgres: postgres ${db}x 127.0.0.1(40000) idle`, db, 1, 2)).toBeNull();
    expect(groupOf('postgres: 15/main: postgres test 127.0.0.1(40000) idle', db, 1, 2)).toBeNull(); // Debian names its cluster first
    expect(groupOf('/usr/sbin/sshd -D', db, 1, 2)).toBeNull();
    expect(groupOf('wrk -t 2 -c 32', db, 1, 2)).toBeNull(); // counted from its own `times`
  });

  it('the bench process by its pid', () => {
    expect(groupOf('node bench/edge.bench.ts', db, 42, 42)).toBe('bench');
  });
});

describe('cpuDelta and cpuBudget', () => {
  const snap = (entries: [number, string, number][]): CpuSnapshot =>
    new Map(entries.map(([pid, group, seconds]) => [pid, { group: group as never, seconds }]));

  it('sums each group over the run; a process born during the run counts from zero, one gone is lost', () => {
    const before = snap([[1, 'api', 10], [2, 'postgres', 5], [3, 'postgres', 1], [4, 'worker', 2]]);
    const after = snap([[1, 'api', 12], [2, 'postgres', 6.5], [5, 'postgres', 0.5], [4, 'worker', 2.25]]);
    const delta = cpuDelta(before, after);
    expect(delta.api).toBeCloseTo(2);
    expect(delta.postgres).toBeCloseTo(2);
    expect(delta.worker).toBeCloseTo(0.25);
    expect(delta.grpc).toBe(0);
  });

  it('per request in ms, the load generator added, the bench not counted twice when it is the load', () => {
    const delta = { api: 1, grpc: 0, worker: 0.5, postgres: 2, redis: 0, bench: 0.5, other: 0 };
    const wrk = cpuBudget(delta, 1, 1_000, 2, false);
    expect(wrk.api).toBeCloseTo(1);
    expect(wrk.load).toBeCloseTo(1);
    expect(wrk.bench).toBeCloseTo(0.5);
    expect(wrk.total).toBeCloseTo(5);
    expect(wrk.coresBusy).toBeCloseTo(2.5);
    const own = cpuBudget(delta, 1, 1_000, 2, true);
    expect(own.bench).toBe(0);
    expect(own.total).toBeCloseTo(4.5);
    expect(cpuBudget(delta, 1, 0, 2, false).api).toBeNaN();
  });

  it("splits PostgreSQL's CPU by whose backend did the work, per request", () => {
    const before: CpuSnapshot = new Map([
      [2, { group: 'postgres', seconds: 5, pgClient: 'api' }],
      [3, { group: 'postgres', seconds: 1, pgClient: 'worker' }],
      [6, { group: 'postgres', seconds: 7, pgClient: 'rest' }],
      [1, { group: 'api', seconds: 10 }],
    ]);
    const after: CpuSnapshot = new Map([
      [2, { group: 'postgres', seconds: 6.5, pgClient: 'api' }],
      [3, { group: 'postgres', seconds: 1.25, pgClient: 'worker' }],
      [5, { group: 'postgres', seconds: 0.5, pgClient: 'worker' }],
      [6, { group: 'postgres', seconds: 7.25, pgClient: 'rest' }],
      [1, { group: 'api', seconds: 12 }],
    ]);
    const byClient = postgresDelta(before, after);
    expect(byClient).toEqual({ api: 1.5, grpc: 0, worker: 0.75, rest: 0.25 });
    const delta = cpuDelta(before, after);
    expect(delta.postgres).toBeCloseTo(2.5);
    const budget = cpuBudget(delta, 0, 500, 1, false, byClient);
    expect(budget.postgresBy).toEqual({ api: 3, grpc: 0, worker: 1.5, rest: 0.5 });
    expect(cpuBudget(delta, 0, 500, 1, false).postgresBy).toBeUndefined();
  });

  it('names the backend of each pool; anything else is the rest', () => {
    expect(['bank-api', 'bank-grpc', 'bank-worker', 'psql', '', undefined].map(pgClientOf)).toEqual(['api', 'grpc', 'worker', 'rest', 'rest', 'rest']);
  });
});

describe('cpuSnapshot', () => {
  it('finds this process as the bench, with the CPU it has used (loading this test took some)', async () => {
    const snapshot = await cpuSnapshot('no_such_database');
    const self = snapshot.get(process.pid);
    expect(self?.group).toBe('bench');
    expect(self!.seconds).toBeGreaterThan(0);
  });
});

describe('cpuSnapshot of PostgreSQL processes', () => {
  it('tags each with the client its name says (a server process named like a pool, to test the tagging)', async () => {
    const servers: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const commandLine = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (/^postgres: (\S+: )?(walwriter|checkpointer)/.test(commandLine)) servers.push(Number(entry));
    }
    expect(servers.length).toBeGreaterThan(0); // PostgreSQL runs beside every test here
    const snapshot = await cpuSnapshot('no_such_database', new Map([[servers[0]!, 'bank-worker']]));
    expect(snapshot.get(servers[0]!)).toMatchObject({ group: 'postgres', pgClient: 'worker' });
    if (servers[1] !== undefined) expect(snapshot.get(servers[1])).toMatchObject({ group: 'postgres', pgClient: 'rest' });
  });
});

describe('cpuSnapshot with the stack scope', () => {
  it("counts a stack process under the stack's root and leaves out one that looks the same elsewhere", async () => {
    // Two processes whose command lines say "worker": one child of this test (the stack's root
    // here), one started by a shell that exits, so it hangs from init like a stack left running.
    const script = "setTimeout(() => {}, 30000) // services/worker/src/main.ts";
    const ours = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    const stray = spawn('sh', ['-c', `"${process.execPath}" -e '${script}' & echo $!`], { stdio: ['ignore', 'pipe', 'ignore'] });
    const strayPid = Number(await new Promise<string>((resolve) => stray.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()))));
    try {
      await new Promise((resolve) => setTimeout(resolve, 200)); // both are running their script
      const all = await cpuSnapshot('no_such_database');
      expect([all.get(ours.pid!)?.group, all.get(strayPid)?.group]).toEqual(['worker', 'worker']);
      const scoped = await cpuSnapshot('no_such_database', new Map(), { rootPid: process.pid });
      expect(scoped.get(ours.pid!)?.group).toBe('worker');
      expect(scoped.has(strayPid)).toBe(false);
      expect(scoped.get(process.pid)?.group).toBe('bench'); // the bench itself is not the stack's, and stays
    } finally {
      ours.kill();
      process.kill(strayPid);
    }
  });
});
