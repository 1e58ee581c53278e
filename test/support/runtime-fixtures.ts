/** The recorded CLI output in test/fixtures/runtimes/, and picking events of one kind out of a parse. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeEvent } from '../../src/domain/runtime-events';
import { REPO } from './harness';

const FIXTURES = join(REPO, 'test', 'fixtures', 'runtimes');
export const fixture = (runtime: string, name: string): string[] => readFileSync(join(FIXTURES, runtime, name), 'utf8').split('\n');

export const activities = (events: RuntimeEvent[]) => events.flatMap((e) => (e.kind === 'activity' ? [e.message] : []));
export const tools = (events: RuntimeEvent[]) => events.flatMap((e) => (e.kind === 'tool' ? [e] : []));
export const errors = (events: RuntimeEvent[]) => events.flatMap((e) => (e.kind === 'error' ? [e] : []));
export const results = (events: RuntimeEvent[]) => events.flatMap((e) => (e.kind === 'result' ? [e] : []));
export const sessions = (events: RuntimeEvent[]) => events.flatMap((e) => (e.kind === 'session' ? [e] : []));
