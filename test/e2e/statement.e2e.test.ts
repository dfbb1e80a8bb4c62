// Statements over both protocols: HTTP answers the CSV or PDF file itself (Content-Type and an attachment
// Content-Disposition), gRPC the google.api.HttpBody message; another user's account is not found.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { idemKey } from '../factories.ts';
import { signUpAndLogIn } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { grpcTransport, httpTransport } from './transports.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const HEADER = 'posted_at,transfer_id,kind,counterparty,memo,reference,amount,balance_after,currency\r\n';

describe('GET /v1/accounts/{account_id}/statement', () => {
  it('answers the CSV bytes over HTTP and the same bytes as HttpBody over gRPC', async () => {
    const http = httpTransport(stack.api.url);
    const grpc = grpcTransport(stack.grpc.address);
    const user = await signUpAndLogIn(http, stack.smtp);
    const other = await signUpAndLogIn(http, stack.smtp);
    const account = await http.call(AccountService, 'openAccount', { currency: 'JPY' }, { token: user.accessToken });
    await http.call(AccountService, 'deposit', { accountId: account.id, amount: 1_500n, idempotencyKey: idemKey(), memo: '=cmd' }, { token: user.accessToken });

    const response = await fetch(`${stack.api.url}/v1/accounts/${account.id}/statement?format=csv`, {
      headers: { authorization: `Bearer ${user.accessToken}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(response.headers.get('content-disposition')).toMatch(new RegExp(`^attachment; filename="statement-${account.id}-\\d{4}-\\d{2}-\\d{2}-\\d{4}-\\d{2}-\\d{2}\\.csv"$`));
    const csv = await response.text();
    expect(csv.startsWith(HEADER)).toBe(true);
    expect(csv.split('\r\n')[1]).toMatch(/^"[^"]+","\d+","deposit","bank","'=cmd","","1500","1500","JPY"$/);

    const body = await grpc.call(AccountService, 'getStatement', { accountId: account.id }, { token: user.accessToken });
    expect(body.contentType).toBe('text/csv; charset=utf-8');
    expect(new TextDecoder().decode(body.data)).toBe(csv);

    const pdf = async () => fetch(`${stack.api.url}/v1/accounts/${account.id}/statement?format=pdf&since=2026-01-01T00:00:00Z&until=2099-01-01T00:00:00Z`, {
      headers: { authorization: `Bearer ${user.accessToken}` },
    });
    const pdfResponse = await pdf();
    expect(pdfResponse.status).toBe(200);
    expect(pdfResponse.headers.get('content-type')).toBe('application/pdf');
    expect(pdfResponse.headers.get('content-disposition')).toBe(`attachment; filename="statement-${account.id}-2026-01-01-2099-01-01.pdf"`);
    const bytes = Buffer.from(await pdfResponse.arrayBuffer());
    expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');
    expect(Buffer.from(await (await pdf()).arrayBuffer()).equals(bytes)).toBe(true);

    const foreign = await fetch(`${stack.api.url}/v1/accounts/${account.id}/statement`, { headers: { authorization: `Bearer ${other.accessToken}` } });
    expect(foreign.status).toBe(404);
    const badFormat = await fetch(`${stack.api.url}/v1/accounts/${account.id}/statement?format=xls`, { headers: { authorization: `Bearer ${user.accessToken}` } });
    expect(badFormat.status).toBe(400);
  });
});
