import { describe, expect, it } from '@jest/globals';
import { periodOfJob } from './statement-scheduler.ts';

const november = { since: new Date('2026-11-01T00:00:00Z'), until: new Date('2026-12-01T00:00:00Z') };

describe('periodOfJob', () => {
  it('the scheduled job on the 1st runs the month that just ended', () => {
    expect(periodOfJob({}, new Date('2026-12-01T00:00:00.250Z'))).toEqual(november);
  });

  it('the scheduled job read by a clock a little behind Redis (still the 30th) runs the month that just ended too', () => {
    expect(periodOfJob({}, new Date('2026-11-30T23:59:58Z'))).toEqual(november);
  });

  it('a catch-up job runs the month it names, whenever it runs', () => {
    expect(periodOfJob({ month: '2026-11' }, new Date('2027-02-14T08:00:00Z'))).toEqual(november);
    expect(periodOfJob({ month: '2026-12' }, new Date('2027-01-05T10:00:00Z'))).toEqual({ since: new Date('2026-12-01T00:00:00Z'), until: new Date('2027-01-01T00:00:00Z') });
  });
});
