/**
 * The workflow bundle's preloaded modules (see PRELOADED_WORKFLOW_MODULES in temporal/worker.ts): evaluated once per
 * worker and shared, frozen, by every workflow, instead of evaluated again for each workflow the worker caches.
 * Only libraries that keep no per-workflow state belong here. (Not our domain modules: zod writes to a schema as it
 * parses, and a preloaded module's schemas would be frozen.)
 *
 * zod keeps a little module-level state that it sets on first use: its default locale and memoizer (on the first
 * schema built) and whether eval works (on the first object parsed). A frozen module cannot be written to, so that
 * first use happens here, before the freeze: a schema is built and parsed, valid and invalid. (Required here, zod is
 * also kept by the bundler, which drops a bare require of a side-effect-free package.)
 */
import { z } from 'zod';

const warmUp = z.object({ s: z.string().min(1), n: z.number().int(), e: z.enum(['a']), o: z.array(z.string()).optional() }).strict();
warmUp.safeParse({ s: 'x', n: 1, e: 'a', o: ['y'] });
warmUp.safeParse({ s: '', n: 1.5, e: 'b', o: [1], extra: true });

export const preloaded = [z];
