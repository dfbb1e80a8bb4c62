// The status script against the stand-in Kubernetes API, after deploys the stand-in played.
import { describe, expect, it } from '@jest/globals';
import { deploy } from './deploy.ts';
import { status, parseStatusArgs } from './status.ts';
import { runCli } from './cli.ts';
import { EXIT } from './k8s/errors.ts';
import type { KubeApiStandIn, Scenario } from '../../../test/support/kube-api-stand-in.ts';
import { captureOutput, standInsPerTest } from '../../../test/support/ops-cli.ts';

const startStandIn = standInsPerTest();

const capture = captureOutput;

async function deployed(scenario: Partial<Scenario>, tag: string): Promise<{ standIn: KubeApiStandIn; kubeconfig: string }> {
  const standIn = await startStandIn(scenario);
  const kubeconfig = await standIn.writeKubeconfig();
  await runCli(async (_argv, output) => deploy({ env: 'kind', tag, kubeconfig, pollMs: 10, migrationTimeoutMs: 5_000, rolloutTimeoutMs: 2_000 }, output), [], capture());
  return { standIn, kubeconfig };
}

describe('status against a stand-in Kubernetes API', () => {
  it('shows rollouts, pods and the last migration Job after a good deploy (exit 0)', async () => {
    const { kubeconfig, standIn } = await deployed({ job: 'succeed' }, 'good777');
    const out = capture();
    const writesBefore = standIn.writes().length;

    const code = await status({ ...parseStatusArgs(['--env', 'kind']), kubeconfig }, out);

    expect(code).toBe(EXIT.ok);
    expect(out.lines[0]).toBe(`context "kind-bank" (${standIn.url}), namespace bank`);
    expect(out.lines).toContain('  bank-api  revision 1  ready 1/1  bank-api:good777  rolled out');
    expect(out.lines.some((line) => /^ {2}bank-migrate-good777-[a-z0-9]+-x7k2p {2}Unknown {2}ready 0\/1 {2}restarts 0$/.test(line))).toBe(true);
    expect(out.lines.at(-1)).toMatch(/^LAST MIGRATION {2}bank-migrate-good777-[a-z0-9]+ {2}tag good777 {2}Complete$/);
    // status only reads.
    expect(standIn.writes()).toHaveLength(writesBefore);
  });

  it('reports a failed last migration with exit 1', async () => {
    const { kubeconfig } = await deployed({ job: 'fail' }, 'bad888');
    const out = capture();

    const code = await runCli(async (_argv, output) => status({ env: 'kind', kubeconfig }, output), [], out);

    expect(code).toBe(EXIT.unexpected);
    expect(out.lines.at(-1)).toMatch(/^LAST MIGRATION {2}bank-migrate-bad888-[a-z0-9]+ {2}tag bad888 {2}Failed$/);
  });
});
