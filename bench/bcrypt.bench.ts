// npm run bench:bcrypt — milliseconds per bcrypt hash (and compare) at several costs on this
// machine, through the same PasswordHasher the use cases use. Also shows how many hashes run in
// parallel on libuv's thread pool (UV_THREADPOOL_SIZE, default 4). Writes bench/results/bcrypt.json.
// Options (env): BENCH_COSTS (default "4,10,12"), BENCH_ROUNDS (hashes per cost, default 5).
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PasswordHasher } from '../shared/src/auth/password.ts';

const COSTS = (process.env.BENCH_COSTS ?? '4,10,12').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PASSWORD = 'correct horse battery staple';

type Row = { cost: number; hashMsMedian: number; hashMsMin: number; compareMsMedian: number; parallel4HashesMs: number };
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

const rows: Row[] = [];
for (const cost of COSTS) {
  const hasher = new PasswordHasher({ cost });
  await hasher.hash(PASSWORD); // warm-up
  const hashTimes: number[] = [];
  const compareTimes: number[] = [];
  let hash = '';
  for (let i = 0; i < ROUNDS; i += 1) {
    let started = performance.now();
    hash = await hasher.hash(PASSWORD);
    hashTimes.push(performance.now() - started);
    started = performance.now();
    await hasher.verify(PASSWORD, hash);
    compareTimes.push(performance.now() - started);
  }
  const started = performance.now();
  await Promise.all(Array.from({ length: 4 }, () => hasher.hash(PASSWORD)));
  const parallel = performance.now() - started;
  rows.push({
    cost,
    hashMsMedian: Math.round(median(hashTimes) * 10) / 10,
    hashMsMin: Math.round(Math.min(...hashTimes) * 10) / 10,
    compareMsMedian: Math.round(median(compareTimes) * 10) / 10,
    parallel4HashesMs: Math.round(parallel),
  });
}

console.log(`bcrypt on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), node ${process.version}, ${ROUNDS} rounds per cost`);
console.table(rows);
const out = path.join(path.dirname(new URL(import.meta.url).pathname), 'results', 'bcrypt.json');
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ at: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, rows }, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
