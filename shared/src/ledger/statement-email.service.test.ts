import { describe, expect, it } from '@jest/globals';
import { monthBefore, monthName } from './statement-email.service.ts';

describe('monthBefore', () => {
  it('is the calendar month (UTC) before the one the instant falls in', () => {
    expect(monthBefore(new Date('2026-12-01T00:00:00Z'))).toEqual({ since: new Date('2026-11-01T00:00:00Z'), until: new Date('2026-12-01T00:00:00Z') });
    expect(monthBefore(new Date('2026-12-31T23:59:59.999Z'))).toEqual({ since: new Date('2026-11-01T00:00:00Z'), until: new Date('2026-12-01T00:00:00Z') });
  });

  it('on the 1st of January is December of the year before', () => {
    expect(monthBefore(new Date('2027-01-01T00:00:30Z'))).toEqual({ since: new Date('2026-12-01T00:00:00Z'), until: new Date('2027-01-01T00:00:00Z') });
  });

  it('goes by UTC, not the local day: 23:30 on the 30th of November is still November', () => {
    expect(monthName(monthBefore(new Date('2026-11-30T23:30:00Z')))).toBe('2026-10');
    expect(monthName(monthBefore(new Date('2026-03-01T00:00:00Z')))).toBe('2026-02');
  });
});
