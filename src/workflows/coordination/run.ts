/**
 * One run of the CoordinationWorkflow: its state (locks, queued reservations, messages), how locks are released and
 * queued reservations granted, and the flag its loop waits on. Workflow code: deterministic, and it loads no schema
 * module at import time (see the note on the domain below).
 */
import { getExternalWorkflowHandle, uuid4 } from '@temporalio/workflow';
import type { CoordinationState, Lock } from '../../domain/coordination';
import { locksGrantedSignal } from '../../domain/workflow-messages';
import type { CoordinationWorkflowInput } from '../coordination-workflow';
import { makeId } from '../../domain/ids';

/**
 * Required when a CoordinationWorkflow runs, not imported: the SDK evaluates a bundled module again in every cached
 * workflow that loads it, and the AgentWorkflows (nearly all of a worker's) have no use for these schemas (~100 KB
 * of the workflow thread's heap each).
 */
const coordinationDomain = () => require('../../domain/coordination') as typeof import('../../domain/coordination');

export class CoordinationRun {
  /** The schemas and the lock rules, required when the workflow starts. */
  readonly domain = coordinationDomain();
  readonly state: CoordinationState;
  /** Set by anything the loop's sleep waits for: a lock, a reservation or a message changed. */
  changed = false;
  /**
   * Whether this run bounds its state (COORDINATION_LIMITS), renews agents' locks and looks after messages to ended
   * agents: `patched('coordination-limits')`, false only for runs begun by older code (their histories replay as before).
   */
  limited = false;

  constructor(input: CoordinationWorkflowInput) {
    this.state = input.state ? this.domain.CoordinationState.parse(input.state) : { locks: [], waiters: [], messages: [] };
  }

  now(): string {
    return new Date().toISOString();
  }

  touch(): void {
    this.changed = true;
  }

  release(pred: (l: Lock) => boolean): void {
    const { state } = this;
    const before = state.locks.length;
    state.locks = state.locks.filter((l) => !pred(l));
    if (state.locks.length !== before) this.grantWaiters();
  }

  /** Grants queued reservations in order; one that cannot have all its paths waits, the others may pass it. */
  grantWaiters(): void {
    const { state } = this;
    this.touch();
    for (const w of [...state.waiters]) {
      if (w.paths.some((p) => this.domain.conflictingLocks(state.locks, p, w.holder).length > 0)) continue;
      const lockIds = w.paths.map((path) => {
        const lock: Lock = {
          id: makeId('lock', uuid4()),
          path,
          holder: w.holder,
          missionId: w.missionId,
          purpose: 'declared files of a sortie',
          acquiredAt: this.now(),
          expiresAt: null,
          renewMs: null,
        };
        state.locks.push(lock);
        return lock.id;
      });
      state.waiters = state.waiters.filter((x) => x !== w);
      void getExternalWorkflowHandle(w.replyTo)
        .signal(locksGrantedSignal, { requestId: w.requestId, lockIds })
        .catch(() => this.release((l) => lockIds.includes(l.id))); // the requester is gone
    }
  }
}
