// Row schemas that many queries share, built once: zod compiles a schema on its first parse, so
// a schema built per call is compiled per call (see the sql.type rule in eslint.config.js).
import { z } from 'zod';

/** One integer named `n`: `SELECT count(*)::int AS n ...` and the like. */
export const countRow = z.object({ n: z.number() });

/** A bigint key named `id`. */
export const bigintIdRow = z.object({ id: z.bigint() });
