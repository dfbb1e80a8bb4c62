/**
 * Groups calls that arrive while one group is being handled: they wait, then go together as the
 * next group, so a burst costs one statement (and one commit: one WAL flush) per group instead of
 * one each. The first call when nothing is in flight goes at once: no added wait at low load.
 *
 * `run` gets the group's items in arrival order and answers each, in the same order. When it
 * throws (or answers a different number of items), every call of that group rejects with the
 * error and the next group goes ahead. A group holds at most `maxGroup` items; the rest wait for
 * the next one. One group is in flight at a time per function returned.
 */
export function groupWhileInFlight<I, O>(run: (items: readonly I[]) => Promise<readonly O[]>, options: { maxGroup?: number } = {}): (item: I) => Promise<O> {
  const maxGroup = options.maxGroup ?? 100;
  if (!(Number.isInteger(maxGroup) && maxGroup >= 1)) throw new Error(`groupWhileInFlight: maxGroup must be an integer >= 1, got ${maxGroup}`);
  type Waiting = { readonly item: I; readonly resolve: (answer: O) => void; readonly reject: (error: unknown) => void };
  let waiting: Waiting[] = [];
  let inFlight = false;

  const next = async (): Promise<void> => {
    if (inFlight || waiting.length === 0) return;
    inFlight = true;
    const group = waiting.slice(0, maxGroup);
    waiting = waiting.slice(maxGroup);
    try {
      const answers = await run(group.map((w) => w.item));
      if (answers.length !== group.length) throw new Error(`groupWhileInFlight: ${group.length} items got ${answers.length} answers`);
      group.forEach((w, i) => w.resolve(answers[i] as O));
    } catch (error) {
      for (const w of group) w.reject(error);
    } finally {
      inFlight = false;
      void next();
    }
  };

  return (item) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      void next();
    });
}
