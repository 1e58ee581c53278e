/**
 * A FleetTools worker: runs AgentWorkflows and the process activity on a task queue.
 *
 * Besides its task queue it polls a queue of its own (`<queue>@<host>:<pid>:<nonce>`), where the
 * next run of an agent workflow that continued as new adopts the live process this worker holds.
 * It starts a reaper, so that its agents' processes die within seconds if this process is killed.
 */
import type { FleetConfig } from '../domain/roles';
import { type Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { bundleWorkflowCode, type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CheckpointStore } from '../store/checkpoint-store';
import { createMissionActivities } from '../activities/mission-activities';
import { createAgentActivities } from '../activities/agent-activities';
import { AgentReader } from '../services/agent-reader';
import { readCoordination, startCoordination } from '../services/coordination-service';
import { sortieRecoveryContext } from '../domain/recovery-context';
import { log } from '../logs/logger';
import { Reaper } from '../process/reaper';
import { removeStaleNetworks } from '../process/sandbox';
import { ProcessTreeSampler } from '../process/tree-sampler';
import { payloadGuardActivityInterceptor } from '../activities/payload-guard';
import { FAILURE_CONVERTER_PATH, fleetDataConverter, WORKFLOW_INTERCEPTOR_MODULES } from './data-converter';

export const DEFAULT_TASK_QUEUE = 'fleet-agents';
/** Cancellation reaches an activity on its next heartbeat; the SDK's 60 s default would make terminate take a minute. */
export const DEFAULT_HEARTBEAT_THROTTLE_MS = 2000;
/**
 * Heartbeats a worker sends Temporal per second at most, once it runs more agents than one per throttle interval each
 * allows (400 at 2 s): each is a write of an agent workflow's state, and the dev server's one SQLite connection was
 * busy 97% of the time at ~480 a second (1000 agents; bench/fleet-scale.ts). Past it, agents heartbeat less often.
 */
export const DEFAULT_MAX_HEARTBEATS_PER_SECOND = 200;

export interface FleetWorkerOptions {
  connection: NativeConnection;
  /** A client made with the same codec (fleetClient): the activities signal and read workflows through it. */
  client: Client;
  /** Encrypts every payload the worker writes; what it cannot authenticate is refused (auth/payload-codec.ts). */
  payloadCodec: PayloadCodec;
  namespace: string;
  taskQueue: string;
  /** Where agents' logs go: `<logsDir>/<agentId>/attempt-<n>.log`. */
  logsDir: string;
  heartbeatThrottleMs?: number;
  heartbeatIntervalMs?: number;
  /** The worker's heartbeat budget (default DEFAULT_MAX_HEARTBEATS_PER_SECOND; 0: none). */
  maxHeartbeatsPerSecond?: number;
  /** Workflows kept in memory between their tasks (the SDK's maxCachedWorkflows); default: the SDK's. */
  maxCachedWorkflows?: number;
  maxConcurrentAgents?: number;
  maxLogBytes?: number;
  /** A prebuilt workflow bundle (tests bundle once and share it). */
  workflowBundle?: { code: string } | { codePath: string };
  /** The reaper to register agents with; started here when absent. */
  reaper?: Reaper;
  /** Key for agents' scoped API tokens (see api/agent-token). */
  agentTokenKey?: Buffer;
  /** The checkpoint store the missions' checkpoints are written to (`<data dir>/checkpoints.sqlite`). */
  checkpointDbPath: string;
  /** CLI runtimes on this worker (fleet.config.json's `runtimes`: executables, extra arguments). */
  runtimes?: FleetConfig['runtimes'];
  /** Where agents spawned with worktree: true get their git worktrees (`<data dir>/worktrees`). */
  worktreesDir?: string;
  /**
   * Agents' sandboxes: where their private CLI state lives (`<data dir>/sandboxes`), and what else of the fleet they must
   * not see besides this worker's logs, checkpoint store, worktrees and that state (`fleet up`: the whole data dir, key files).
   */
  sandbox: { stateDir: string; hide?: string[] };
}

const PREBUILT_BUNDLE = join(__dirname, '..', '..', 'workflow-bundle.js');

/** What agents' sandboxes hide: this worker's logs, checkpoint store, worktrees and agents' private state, and what it is told. */
function sandboxOf(opts: FleetWorkerOptions): { stateDir: string; hide: string[] } {
  const { stateDir, hide = [] } = opts.sandbox;
  return { stateDir, hide: [opts.logsDir, opts.checkpointDbPath, ...(opts.worktreesDir ? [opts.worktreesDir] : []), stateDir, ...hide] };
}

export function workflowsPath(): string {
  return require.resolve('../workflows');
}

/**
 * Modules evaluated once per worker and shared by every workflow, instead of once per workflow: the SDK's reusable
 * V8 context evaluates the bundle's modules anew for each workflow it caches, and zod's alone cost the worker about
 * 1.5 MB of RSS per running agent (and ~20 ms of CPU per workflow evaluated). See workflows/preload.ts.
 */
export const PRELOADED_WORKFLOW_MODULES = [require.resolve('../workflows/preload')];

export async function bundleWorkflows(): Promise<{ code: string }> {
  return bundleWorkflowCode({
    workflowsPath: workflowsPath(),
    logger: quietBundlerLogger,
    preloadModules: PRELOADED_WORKFLOW_MODULES,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
  });
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (msg: string) => log.warn(msg),
  error: (msg: string) => log.error(msg),
};

export class FleetWorker {
  private running: Promise<void> | undefined;

  private constructor(
    private readonly workers: Worker[],
    readonly workerQueue: string,
    private readonly stopAgents: (graceMs: number) => Promise<void>,
    private readonly reaper: Reaper,
    private readonly ownsReaper: boolean,
    private readonly store: CheckpointStore,
  ) {}

  static async create(opts: FleetWorkerOptions): Promise<FleetWorker> {
    // First: a store that cannot be opened (corrupt, read-only) stops start-up before anything is started.
    const store = CheckpointStore.open(opts.checkpointDbPath);
    const reaper = opts.reaper ?? Reaper.start();
    const sampler = new ProcessTreeSampler();
    await removeStaleNetworks();
    const workerQueue = `${opts.taskQueue}@${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    const throttle = opts.heartbeatThrottleMs ?? DEFAULT_HEARTBEAT_THROTTLE_MS;
    const { activities, stopAll } = createAgentActivities({
      client: opts.client,
      logsDir: opts.logsDir,
      workerQueue,
      reaper,
      sampler,
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      heartbeatBudget: { perSecond: opts.maxHeartbeatsPerSecond ?? DEFAULT_MAX_HEARTBEATS_PER_SECOND, throttleMs: throttle },
      maxLogBytes: opts.maxLogBytes,
      agentTokenKey: opts.agentTokenKey,
      runtimes: opts.runtimes,
      worktreesDir: opts.worktreesDir,
      sandbox: sandboxOf(opts),
      recoveryOf: ({ checkpointId, sortieId }) => {
        const c = store.get(checkpointId);
        if (!c)
          throw new Error(
            `checkpoint ${checkpointId} is not in this worker's checkpoint store (${opts.checkpointDbPath}); run the worker on the API's data dir, or import the checkpoint there with \`fleet checkpoints import\``,
          );
        return { context: sortieRecoveryContext(c, sortieId), sortie: c.sorties.find((s) => s.id === sortieId) ?? null };
      },
    });
    // A checkpoint reads each running agent as the API shows it: the live progress from its output is
    // in the attempt's heartbeat details (describe), what it reported through the API in its state (query).
    const agents = new AgentReader({ client: opts.client, namespace: opts.namespace, uiBaseUrl: null });
    const missionActivities = createMissionActivities({
      client: opts.client,
      readAgent: (id) => agents.get(id),
      readCoordination: (workflowId) => readCoordination(opts.client, workflowId),
      startCoordination: (workflowId, taskQueue) => startCoordination(opts.client, workflowId, taskQueue),
      store,
      logsDir: opts.logsDir,
      coordinationQueue: opts.taskQueue,
    });
    const common: Partial<WorkerOptions> = {
      connection: opts.connection,
      namespace: opts.namespace,
      activities: { ...activities, ...missionActivities },
      dataConverter: fleetDataConverter(opts.payloadCodec),
      interceptors: { activity: [payloadGuardActivityInterceptor] },
      maxHeartbeatThrottleInterval: throttle,
      defaultHeartbeatThrottleInterval: throttle,
      maxConcurrentActivityTaskExecutions: opts.maxConcurrentAgents ?? 1000,
      ...(opts.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: opts.maxCachedWorkflows } : {}),
      // Give the activities time to stop their process groups (SIGTERM, grace, SIGKILL) on shutdown.
      shutdownGraceTime: '1 second',
      shutdownForceTime: '30 seconds',
    };
    const bundle = opts.workflowBundle ?? (existsSync(PREBUILT_BUNDLE) ? { codePath: PREBUILT_BUNDLE } : undefined);
    try {
      const main = await Worker.create({
        ...common,
        taskQueue: opts.taskQueue,
        ...(bundle
          ? { workflowBundle: bundle }
          : {
              workflowsPath: workflowsPath(),
              bundlerOptions: { preloadModules: PRELOADED_WORKFLOW_MODULES },
              interceptors: { activity: [payloadGuardActivityInterceptor], workflowModules: WORKFLOW_INTERCEPTOR_MODULES },
            }),
      } as WorkerOptions);
      const own = await Worker.create({ ...common, taskQueue: workerQueue, maxConcurrentActivityTaskPolls: 1 } as WorkerOptions);
      return new FleetWorker([main, own], workerQueue, stopAll, reaper, !opts.reaper, store);
    } catch (err) {
      // Nothing is left running of a worker that could not start.
      if (!opts.reaper) reaper.close();
      store.close();
      throw err;
    }
  }

  /** Runs until shutdown() (or a fatal worker error). */
  run(): Promise<void> {
    this.running ??= Promise.all(this.workers.map((w) => w.run())).then(() => undefined);
    return this.running;
  }

  /** Graceful stop: running agents are stopped (and retried once a worker is back). */
  async shutdown(): Promise<void> {
    for (const w of this.workers) {
      if (w.getState() === 'RUNNING') w.shutdown();
    }
    await this.running?.catch((err) => log.error('worker stopped with an error', { error: (err as Error).message }));
    await this.stopAgents(5000);
    if (this.ownsReaper) this.reaper.close();
    this.store.close();
  }
}
