// gRPC load: CreateTransfer from a grpc-js client in this process, `concurrency` calls in flight
// (closed loop: each finished call starts the next) over one channel, as a gRPC client would.
// It shares the machine's cores with the servers, as wrk does.
import { create, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '@bank/grpc/descriptors';
import { CreateTransferRequestSchema, TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import type { BenchUser } from './users.ts';
import type { LoadResult } from './wrk.ts';

export const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

export async function runGrpcTransfers(options: {
  address: string;
  mode: 'uniform' | 'hot';
  users: readonly BenchUser[];
  tag: string;
  concurrency: number;
  seconds: number;
}): Promise<LoadResult> {
  const method = serviceDefinition(TransferService).CreateTransfer;
  if (!method) throw new Error('TransferService has no CreateTransfer');
  const client = new grpc.Client(options.address, grpc.credentials.createInsecure());
  const metadata = options.users.map((u) => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${u.accessToken}`);
    return md;
  });
  const n = options.users.length;
  const pick = (): [number, number] => {
    if (options.mode === 'hot') return Math.random() < 0.5 ? [0, 1] : [1, 0];
    const from = Math.floor(Math.random() * n);
    const to = (from + 1 + Math.floor(Math.random() * (n - 1))) % n;
    return [from, to];
  };
  // Only the status matters here: the answer is not decoded, to spend less of the shared CPU.
  const serialize = (message: Parameters<typeof toBinary<typeof CreateTransferRequestSchema>>[1]) => Buffer.from(toBinary(CreateTransferRequestSchema, message));
  const raw = (bytes: Buffer) => bytes;
  const latencies: number[] = [];
  let errors = 0;
  let firstError = '';
  let seq = 0;
  const call = (from: number, to: number) =>
    new Promise<void>((resolve) => {
      const request = create(CreateTransferRequestSchema, {
        fromAccountId: options.users[from]!.accountId,
        toAccountId: options.users[to]!.accountId,
        amount: 1n,
        currency: 'USD',
        idempotencyKey: `${options.tag}-${seq++}`,
      });
      const started = performance.now();
      client.makeUnaryRequest(method.path, serialize, raw, request, metadata[from]!, { deadline: Date.now() + 10_000 }, (error) => {
        if (error) {
          errors += 1;
          firstError ||= `${grpc.status[error.code]} ${error.details}`;
        } else latencies.push(performance.now() - started);
        resolve();
      });
    });
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve())),
  );
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + options.seconds * 1_000;
  try {
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (performance.now() < deadline) await call(...pick());
      }),
    );
  } finally {
    client.close();
  }
  const seconds = (performance.now() - started) / 1_000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length + errors,
    errors,
    firstError,
    seconds: Number(seconds.toFixed(2)),
    okPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}
