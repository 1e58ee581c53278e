/** /missions, /checkpoints and /recoveries: declared once (validation, access, OpenAPI). */
import { z } from 'zod';
import {
  Checkpoint,
  CheckpointId,
  CheckpointImport,
  CheckpointRequest,
  CheckpointSummary,
  ListCheckpointsQuery,
  ListRecoveriesQuery,
  PruneRequest,
  ResumeRequest,
  ResumeResult,
} from '../domain/checkpoint';
import { CheckpointList, Deleted, ErrorBody, MissionList, Pruned, RecoveryList } from '../domain/api';
import { Mission, MissionId, MissionRequest } from '../domain/mission';
import type { CheckpointService } from '../services/checkpoint-service';
import type { MissionService } from '../services/mission-service';
import { ListMissionsQuery } from '../domain/api';
import type { RouteRegistry } from './route-registry';

/** A checkpoint of a 1,000-sortie mission with long recovery contexts is a few MB: more than other bodies. */
export const CHECKPOINT_IMPORT_LIMIT = 16 * 1024 * 1024;
/** POST /checkpoints: a mission id and a note of up to 2,000 characters (each up to 6 bytes as a JSON escape). */
const CHECKPOINT_REQUEST_LIMIT = 16 * 1024;
/** Prune and resume: a few numbers and booleans. */
const SMALL_BODY_LIMIT = 1024;

const MissionParams = z.object({ id: MissionId }).strict();
const CheckpointParams = z.object({ id: CheckpointId }).strict();
const LatestParams = z.object({ missionId: MissionId }).strict();

const err = (description: string) => ({ description, schema: ErrorBody });
const E400 = { 400: err('invalid input: each bad field is named in details.fields') };
const E404 = { 404: err('no such mission or checkpoint') };

export function registerMissionRoutes(routes: RouteRegistry, missions: MissionService, checkpoints: CheckpointService): void {
  registerMissions(routes, missions);
  registerCheckpointTaking(routes, checkpoints);
  registerCheckpointStore(routes, checkpoints);
  registerResume(routes, checkpoints);
}

/** Missions: create, list, read, cancel. */
function registerMissions(routes: RouteRegistry, missions: MissionService): void {
  routes.add(
    {
      method: 'post',
      path: '/missions',
      summary: 'Create a mission: its sorties run as agents in dependency order (a MissionWorkflow)',
      access: 'admin',
      body: MissionRequest,
      responses: { 201: { description: 'the new mission', schema: Mission }, ...E400 },
    },
    async ({ body }) => [201, await missions.create(body, 'api')],
  );
  routes.add(
    {
      method: 'get',
      path: '/missions',
      summary: 'List missions, newest first',
      access: 'admin',
      query: ListMissionsQuery,
      responses: { 200: { description: 'missions', schema: MissionList }, ...E400 },
    },
    async ({ query }) => [200, await missions.list(query)],
  );
  routes.add(
    {
      method: 'get',
      path: '/missions/:id',
      summary: 'One mission: status, progress derived from its sorties, each sortie and its agent',
      access: 'admin',
      params: MissionParams,
      responses: { 200: { description: 'the mission', schema: Mission }, ...E400, ...E404 },
    },
    async ({ params }) => [200, await missions.get(params.id)],
  );
  routes.add(
    {
      method: 'delete',
      path: '/missions/:id',
      summary: 'Cancel a mission: its agents are terminated gracefully',
      access: 'admin',
      params: MissionParams,
      responses: {
        202: { description: 'cancelling; the mission as it was', schema: Mission },
        ...E400,
        ...E404,
        409: err('the mission has already ended'),
      },
    },
    async ({ params }) => [202, await missions.cancel(params.id)],
  );
}

/** Checkpoints made here (of a running mission) or brought from another store. */
function registerCheckpointTaking(routes: RouteRegistry, checkpoints: CheckpointService): void {
  routes.add(
    {
      method: 'post',
      path: '/checkpoints',
      summary: 'Checkpoint a running mission (an update on its workflow; kept in the checkpoint store)',
      access: 'admin',
      body: CheckpointRequest,
      bodyLimit: CHECKPOINT_REQUEST_LIMIT,
      responses: {
        201: { description: 'the checkpoint', schema: Checkpoint },
        ...E400,
        ...E404,
        409: err('the mission has ended, or has not started (no worker polls its task queue)'),
      },
    },
    async ({ body }) => [201, await checkpoints.create(body.missionId, body.note, 'api')],
  );
  routes.add(
    {
      method: 'post',
      path: '/checkpoints/import',
      summary: `Add a checkpoint exported from another store (GET /checkpoints/:id there), to resume its mission here; bodies up to ${CHECKPOINT_IMPORT_LIMIT / 1024 / 1024} MiB`,
      access: 'admin',
      body: CheckpointImport,
      // Only the admin token gets this far: the body is read after the token is checked (route-registry.ts).
      bodyLimit: CHECKPOINT_IMPORT_LIMIT,
      responses: {
        201: { description: 'imported', schema: CheckpointSummary },
        200: { description: 'already here, identical', schema: CheckpointSummary },
        ...E400,
        409: err('a different checkpoint with this id is already here'),
      },
    },
    async ({ body }) => {
      const { created, checkpoint } = checkpoints.import(body);
      return [created ? 201 : 200, checkpoint];
    },
  );
}

/** The checkpoint store: list, read, delete, prune. */
function registerCheckpointStore(routes: RouteRegistry, checkpoints: CheckpointService): void {
  routes.add(
    {
      method: 'get',
      path: '/checkpoints',
      summary: 'List checkpoints, newest first',
      access: 'admin',
      query: ListCheckpointsQuery,
      responses: { 200: { description: 'checkpoints', schema: CheckpointList }, ...E400 },
    },
    async ({ query }) => [200, { checkpoints: checkpoints.list(query) }],
  );
  routes.add(
    {
      method: 'get',
      path: '/checkpoints/latest/:missionId',
      summary: "A mission's newest checkpoint",
      access: 'admin',
      params: LatestParams,
      responses: { 200: { description: 'the checkpoint', schema: Checkpoint }, ...E400, ...E404 },
    },
    async ({ params }) => [200, checkpoints.latest(params.missionId)],
  );
  routes.add(
    {
      method: 'post',
      path: '/checkpoints/prune',
      summary: 'Delete old checkpoints, keeping the newest of each mission',
      access: 'admin',
      body: PruneRequest,
      bodyLimit: SMALL_BODY_LIMIT,
      responses: { 200: { description: 'ids deleted', schema: Pruned }, ...E400 },
    },
    async ({ body }) => [200, { deleted: checkpoints.prune(body) }],
  );
  routes.add(
    {
      method: 'get',
      path: '/checkpoints/:id',
      summary: 'One checkpoint: sorties, locks, pending messages, recovery context',
      access: 'admin',
      params: CheckpointParams,
      responses: { 200: { description: 'the checkpoint', schema: Checkpoint }, ...E400, ...E404 },
    },
    async ({ params }) => [200, checkpoints.get(params.id)],
  );
  routes.add(
    {
      method: 'delete',
      path: '/checkpoints/:id',
      summary: 'Delete a checkpoint',
      access: 'admin',
      params: CheckpointParams,
      responses: { 200: { description: 'deleted', schema: Deleted }, ...E400, ...E404 },
    },
    async ({ params }) => {
      checkpoints.delete(params.id);
      return [200, { deleted: params.id }];
    },
  );
}

/** Resuming a mission from a checkpoint, and the record of resumes. */
function registerResume(routes: RouteRegistry, checkpoints: CheckpointService): void {
  routes.add(
    {
      method: 'post',
      path: '/checkpoints/:id/resume',
      summary: 'Plan a resume from a checkpoint (dryRun: change nothing) or run it: a new run of the mission seeded from the snapshot',
      access: 'admin',
      params: CheckpointParams,
      body: ResumeRequest,
      bodyLimit: SMALL_BODY_LIMIT,
      responses: {
        200: { description: 'the plan (dry run)', schema: ResumeResult },
        201: { description: 'resumed: the plan and the recovery event', schema: ResumeResult },
        ...E400,
        ...E404,
        409: err('refused without force: details.plan lists the blockers'),
      },
    },
    async ({ params, body }) => {
      const result = await checkpoints.resume(params.id, body, 'api');
      return [result.executed ? 201 : 200, result];
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/recoveries',
      summary: 'Recoveries (executed resumes), newest first',
      access: 'admin',
      query: ListRecoveriesQuery,
      responses: { 200: { description: 'recovery events', schema: RecoveryList }, ...E400 },
    },
    async ({ query }) => [200, { recoveries: checkpoints.recoveries(query) }],
  );
}
