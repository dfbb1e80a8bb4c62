// Statements over both protocols: HTTP answers the CSV or PDF file itself (Content-Type and an attachment
// Content-Disposition), gRPC the google.api.HttpBody message; another user's account is not found.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
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

  it('the typed REST client downloads the file: the same bytes, content type and file name the API sends', async () => {
    const http = httpTransport(stack.api.url);
    const user = await signUpAndLogIn(http, stack.smtp);
    const other = await signUpAndLogIn(http, stack.smtp);
    const account = await http.call(AccountService, 'openAccount', { currency: 'EUR' }, { token: user.accessToken });
    await http.call(AccountService, 'deposit', { accountId: account.id, amount: 12_34n, idempotencyKey: idemKey(), memo: 'gift' }, { token: user.accessToken });
    const client = http.client.withAccessToken(user.accessToken);
    const period = { since: timestampFromDate(new Date('2026-01-01T00:00:00Z')), until: timestampFromDate(new Date('2099-01-01T00:00:00Z')) };

    const csv = await client.account.getStatement({ accountId: account.id, ...period });
    expect(csv.contentType).toBe('text/csv; charset=utf-8');
    expect(csv.filename).toBe(`statement-${account.id}-2026-01-01-2099-01-01.csv`);
    const csvText = new TextDecoder().decode(csv.data);
    expect(csvText.startsWith(HEADER)).toBe(true);
    expect(csvText.split('\r\n')[1]).toMatch(/^"[^"]+","\d+","deposit","bank","gift","","12.34","12.34","EUR"$/);

    const pdf = await client.account.getStatement({ accountId: account.id, ...period, format: 'pdf' });
    expect(pdf.contentType).toBe('application/pdf');
    expect(pdf.filename).toBe(`statement-${account.id}-2026-01-01-2099-01-01.pdf`);
    const raw = await fetch(`${stack.api.url}/v1/accounts/${account.id}/statement?format=pdf&since=2026-01-01T00:00:00Z&until=2099-01-01T00:00:00Z`, {
      headers: { authorization: `Bearer ${user.accessToken}` },
    });
    expect(Buffer.from(pdf.data).equals(Buffer.from(await raw.arrayBuffer()))).toBe(true);

    await expect(http.client.withAccessToken(other.accessToken).account.getStatement({ accountId: account.id })).rejects.toMatchObject({ status: 404, code: 'ACCOUNT_NOT_FOUND' });
  });

  it('the OpenAPI document the API serves describes the statement as CSV or PDF bytes, not JSON', async () => {
    const document = (await (await fetch(`${stack.api.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }>; headers?: Record<string, unknown> }> }>>;
    };
    const ok = document.paths['/v1/accounts/{account_id}/statement']?.get?.responses['200'];
    expect(ok?.content).toEqual({
      'text/csv': { schema: { type: 'string', format: 'binary' } },
      'application/pdf': { schema: { type: 'string', format: 'binary' } },
    });
    expect(Object.keys(ok?.headers ?? {})).toEqual(['Content-Disposition']);
  });
});
