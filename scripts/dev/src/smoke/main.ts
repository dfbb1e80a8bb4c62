// `npm run smoke`: the README walkthrough against a running stack. SMOKE_HTTP_URL
// (http://localhost:8080), SMOKE_GRPC_ADDRESS (localhost:9090), SMOKE_INBOX_URL (http://localhost:8025).
import { runSmoke } from './smoke.ts';

try {
  await runSmoke({
    httpUrl: process.env.SMOKE_HTTP_URL ?? 'http://localhost:8080',
    grpcAddress: process.env.SMOKE_GRPC_ADDRESS ?? 'localhost:9090',
    inboxUrl: process.env.SMOKE_INBOX_URL ?? 'http://localhost:8025',
  });
  console.log('smoke: PASSED');
} catch (error) {
  console.error(`smoke: FAILED: ${(error as Error).message}`);
  process.exit(1);
}
