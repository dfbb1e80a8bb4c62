import { describe, expect, it } from '@jest/globals';
import { productionProblems } from './production.ts';

const worker = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://bank_app@db.internal/bank',
  REDIS_URL: 'redis://cache.internal:6379',
  SMTP_URL: 'smtps://smtp.example.com:465',
  MAIL_FROM: 'Bank <no-reply@bank.example.com>',
  PUBLIC_BASE_URL: 'https://bank.example.com',
};

describe('productionProblems: webhook targets', () => {
  it('refuses WEBHOOK_ALLOW_PRIVATE_TARGETS=true in production for the processes that register or send webhooks', () => {
    const problem = 'WEBHOOK_ALLOW_PRIVATE_TARGETS: must not be true in production (webhooks could reach loopback, private and link-local addresses)';
    expect(productionProblems('worker', { ...worker, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' })).toEqual([problem]);
    expect(productionProblems('api', { ...worker, PASETO_SECRET_KEY: 'k', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' })).toEqual([problem]);
  });

  it('accepts it off, and anywhere outside production', () => {
    expect(productionProblems('worker', { ...worker, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'false' })).toEqual([]);
    expect(productionProblems('worker', worker)).toEqual([]);
    expect(productionProblems('worker', { ...worker, NODE_ENV: 'development', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' })).toEqual([]);
  });
});
