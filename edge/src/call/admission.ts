// Admission control for both edges: a cap on calls in flight per process and a small queue in
// front of it, so that at many times the load the process sustains a call is refused at once
// (503 with Retry-After / UNAVAILABLE with retry info) instead of waiting behind every other.
import { Counter, Gauge, type Registry } from 'prom-client';
import { AdmissionGate } from '@bank/shared/overload/admission-gate';
import type { Interceptor } from './call.ts';

export type AdmissionLimits = {
  /** Calls running at once (MAX_INFLIGHT_REQUESTS). */
  maxInFlight: number;
  /** Calls that may wait for one of them to finish (MAX_QUEUED_REQUESTS); the next is refused. */
  maxQueued: number;
  /** The longest a call waits in that queue before it is refused (REQUEST_QUEUE_TIMEOUT_MS). */
  queueTimeoutMs: number;
};

export function createAdmissionGate(limits: AdmissionLimits): AdmissionGate {
  return new AdmissionGate({
    permits: limits.maxInFlight,
    queueLimit: limits.maxQueued,
    queueTimeoutMs: limits.queueTimeoutMs,
    busy: `this server is at its limit of ${limits.maxInFlight} calls in flight`,
  });
}

/**
 * Holds one of the gate's permits for the rest of the chain, so a call counts as in flight until
 * its handler has really finished (a call answered early by its deadline still holds it while
 * its use case winds down). A queued call leaves the queue when its deadline passes or its
 * client goes away. It runs before authentication and decoding: a refused call costs neither a
 * token check nor reading its body.
 */
export function admissionInterceptor(gate: AdmissionGate): Interceptor {
  return (next) => async (call) => {
    const release = await gate.acquire({ signal: call.signal });
    try {
      return await next(call);
    } finally {
      release();
    }
  };
}

/** The gate's state at scrape time: calls in flight and queued, and calls refused by reason. */
export function registerAdmissionMetrics(registry: Registry, gate: AdmissionGate): void {
  new Gauge({
    name: 'bank_admission_requests',
    help: 'Calls admitted and running (in_flight) and waiting for admission (queued), per process.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.set({ state: 'in_flight' }, gate.inFlight);
      this.set({ state: 'queued' }, gate.waiting);
    },
  });
  const seen = { queue_full: 0, queue_timeout: 0 };
  new Counter({
    name: 'bank_admission_shed_total',
    help: 'Calls refused with OVERLOADED by admission control: the queue was full, or the call waited its whole time.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      for (const reason of ['queue_full', 'queue_timeout'] as const) {
        this.inc({ reason }, gate.shed[reason] - seen[reason]);
        seen[reason] = gate.shed[reason];
      }
    },
  });
}
