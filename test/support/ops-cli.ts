// What the operator-script tests share: an Output that records every line, and stand-in
// Kubernetes API servers started per test and stopped after it.
import { afterEach } from '@jest/globals';
import type { Output } from '@bank/ops-tools/cli';
import { KubeApiStandIn, type Scenario } from './kube-api-stand-in.ts';

/** An Output that keeps what a script printed, for assertions. */
export function captureOutput(): Output & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, log: (line) => lines.push(line), error: (line) => errors.push(line) };
}

/** Registers an afterEach that stops them; returns a starter for stand-ins playing `scenario`. */
export function standInsPerTest(): (scenario?: Partial<Scenario>) => Promise<KubeApiStandIn> {
  const standIns: KubeApiStandIn[] = [];
  afterEach(async () => {
    await Promise.all(standIns.splice(0).map((standIn) => standIn.stop()));
  });
  return async (scenario = {}) => {
    const standIn = new KubeApiStandIn(scenario);
    standIns.push(standIn);
    await standIn.start();
    return standIn;
  };
}
