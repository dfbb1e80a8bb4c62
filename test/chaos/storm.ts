// The mixed storm: `concurrency` clients, each sending one request after another over HTTP or gRPC
// at random: transfers both ways between the users, deposits, holds and their captures,
// withdrawals, and sign-ups and logins (so emails flow), every one retried on its own key.
import type { Protocol } from './bank-client.ts';
import { capture, deposit, logIn, signUp, transfer, withdraw, type ChaosUser, type OpsContext } from './operations.ts';

export type Storm = {
  /** Tells every client to stop after its request in hand (which still retries to its end). */
  stop(): Promise<void>;
};

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)] as T;
const between = (low: number, high: number) => BigInt(low + Math.floor(Math.random() * (high - low + 1)));
const protocol = (): Protocol => (Math.random() < 0.5 ? 'http' : 'grpc');

/** One request of the mix (a hold and its capture count as one). */
export async function stormRequest(ctx: OpsContext, users: readonly ChaosUser[]): Promise<void> {
  const roll = Math.random();
  const from = pick(users);
  let to = pick(users);
  while (to === from) to = pick(users);
  if (roll < 0.45) {
    await transfer(ctx, protocol(), from, to, between(1, 1_000));
  } else if (roll < 0.6) {
    await deposit(ctx, protocol(), from, between(1, 10_000));
  } else if (roll < 0.75) {
    const held = between(100, 1_000);
    const hold = await transfer(ctx, protocol(), from, to, held, { hold: true });
    if (hold.transferId !== undefined) await capture(ctx, protocol(), from, hold.transferId, held - between(0, 99));
  } else if (roll < 0.85) {
    await withdraw(ctx, protocol(), from, between(1, 500));
  } else if (roll < 0.93) {
    await signUp(ctx, protocol());
  } else {
    await logIn(ctx, protocol(), from);
  }
}

export function startStorm(ctx: OpsContext, users: readonly ChaosUser[]): Storm {
  let stopping = false;
  const lane = async () => {
    while (!stopping) {
      try {
        await stormRequest(ctx, users);
      } catch (error) {
        ctx.journal.errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  };
  const lanes = Array.from({ length: ctx.config.concurrency }, lane);
  return {
    async stop() {
      stopping = true;
      await Promise.all(lanes);
    },
  };
}
