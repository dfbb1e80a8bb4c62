// The mixed storm: `concurrency` clients, each sending one request after another over HTTP or gRPC
// at random: transfers both ways between the users, deposits, holds and their captures,
// withdrawals, and sign-ups and logins (so emails flow), every one retried on its own key. A small
// share (CHAOS_REFUSED_SHARE) are requests the ledger must refuse, retried on their keys like the
// rest: an overdraft by the poor user (kept at a zero balance: nobody sends it money) and the
// capture of a hold voided just before. They give "no refused key moved money" refusals to check.
import type { Protocol } from './bank-client.ts';
import { capture, deposit, logIn, signUp, transfer, voidHold, withdraw, type ChaosUser, type OpsContext } from './operations.ts';

export type Storm = {
  /** Tells every client to stop after its request in hand (which still retries to its end). */
  stop(): Promise<void>;
};

/** Who the storm moves money between, and the user whose every money request must be refused. */
export type StormCast = { users: readonly ChaosUser[]; poor: ChaosUser };

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)] as T;
const between = (low: number, high: number) => BigInt(low + Math.floor(Math.random() * (high - low + 1)));
const protocol = (): Protocol => (Math.random() < 0.5 ? 'http' : 'grpc');

/** A request the ledger must refuse (see the header). */
async function refusedRequest(ctx: OpsContext, { users, poor }: StormCast): Promise<void> {
  const roll = Math.random();
  const to = pick(users);
  if (roll < 0.25) {
    await transfer(ctx, protocol(), poor, to, between(1, 1_000), { mustBeRefused: true });
  } else if (roll < 0.4) {
    await transfer(ctx, protocol(), poor, to, between(1, 1_000), { hold: true, mustBeRefused: true });
  } else if (roll < 0.6) {
    await withdraw(ctx, protocol(), poor, between(1, 500), { mustBeRefused: true });
  } else {
    const from = pick(users);
    let payee = pick(users);
    while (payee === from) payee = pick(users);
    const held = between(100, 1_000);
    const hold = await transfer(ctx, protocol(), from, payee, held, { hold: true });
    if (hold.transferId === undefined) return;
    const voided = await voidHold(ctx, protocol(), from, hold.transferId);
    // Only once the void was acknowledged is the hold surely no longer pending (a void given up
    // may not have happened, and then the capture rightly goes through).
    if (voided.outcome === 'acknowledged') await capture(ctx, protocol(), from, hold.transferId, held, { mustBeRefused: true });
  }
}

/** One request of the mix (a hold and its capture count as one). */
export async function stormRequest(ctx: OpsContext, cast: StormCast): Promise<void> {
  const { users } = cast;
  const share = ctx.config.refusedShare;
  const draw = Math.random();
  if (draw < share) return refusedRequest(ctx, cast);
  // The rest of the mix in the same proportions as ever.
  const roll = (draw - share) / (1 - share);
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

export function startStorm(ctx: OpsContext, cast: StormCast): Storm {
  let stopping = false;
  const lane = async () => {
    while (!stopping) {
      try {
        await stormRequest(ctx, cast);
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
