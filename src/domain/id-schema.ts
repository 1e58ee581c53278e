/** The schema of an id of one kind (see ids.ts), with the message every caller gets for a malformed one. */
import { z } from 'zod';
import { idPattern, idShape, type IdKind } from './ids';

export const idSchema = (kind: IdKind) => z.string().regex(idPattern(kind), `must look like ${idShape(kind)}`);
