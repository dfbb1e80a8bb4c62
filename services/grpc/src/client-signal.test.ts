import { EventEmitter } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import { clientSignal } from './grpc-server.ts';

// A stand-in for grpc-js's ServerUnaryCall: an emitter of 'cancelled' with its `cancelled` flag
// (grpc-js emits 'cancelled' when the call's stream closes, answered or not).
const fakeCall = (cancelled = false) => Object.assign(new EventEmitter(), { cancelled });

describe('clientSignal', () => {
  it('aborts when the call is cancelled before it is answered', () => {
    const call = fakeCall();
    const client = clientSignal(call);
    expect(client.signal.aborted).toBe(false);
    call.emit('cancelled', 'cancelled');
    expect(client.signal.aborted).toBe(true);
  });

  it('stays quiet when the stream closes after the answer (grpc-js emits cancelled then too)', () => {
    const call = fakeCall();
    const client = clientSignal(call);
    client.answered();
    call.emit('cancelled', 'cancelled');
    expect(client.signal.aborted).toBe(false);
  });

  it('starts aborted for a call already cancelled', () => {
    expect(clientSignal(fakeCall(true)).signal.aborted).toBe(true);
  });
});
