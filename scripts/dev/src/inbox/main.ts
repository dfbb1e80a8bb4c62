// The development inbox as a process: INBOX_SMTP_PORT (1025), INBOX_HTTP_PORT (8025), INBOX_DIR.
import { startInbox } from './inbox.ts';

const inbox = await startInbox({
  smtpPort: Number(process.env.INBOX_SMTP_PORT ?? 1025),
  httpPort: Number(process.env.INBOX_HTTP_PORT ?? 8025),
  ...(process.env.INBOX_DIR ? { dataDir: process.env.INBOX_DIR } : {}),
});
console.log(`inbox: SMTP on 127.0.0.1:${inbox.smtpPort}, web page on http://127.0.0.1:${inbox.httpPort}`);
const stop = () => {
  inbox.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
