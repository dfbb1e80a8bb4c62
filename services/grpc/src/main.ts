// The gRPC server process: see runProcess for start-up and graceful shutdown.
import { runProcess } from '@bank/shared/process/run-process';
import { startGrpcServer } from './grpc-server.ts';

await runProcess('grpc', (config, logger) => startGrpcServer(config, { logger }));
