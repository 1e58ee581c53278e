/** /api/v1/agents routes: validation at the edge, Temporal behind AgentService. */
import { Router } from 'express';
import { z } from 'zod';
import { AgentId, ProgressReport, SpawnRequest } from '../domain/agent';
import { AgentService, ListAgentsQuery } from './agent-service';
import { parse, route } from './errors';

const IdParams = z.object({ id: AgentId });
const TerminateQuery = z
  .object({ graceMs: z.coerce.number().int().min(0).max(600_000).optional(), reason: z.string().max(1000).optional() })
  .strict();
const Empty = z.object({}).strict();

export function agentsRouter(agents: AgentService): Router {
  const r = Router();

  r.post('/spawn', route(async (req, res) => {
    const body = parse(SpawnRequest, req.body ?? {}, 'body');
    res.status(201).json(await agents.spawn(body));
  }));

  r.get('/', route(async (req, res) => {
    res.json(await agents.list(parse(ListAgentsQuery, req.query, 'query')));
  }));

  r.get('/:id', route(async (req, res) => {
    const { id } = parse(IdParams, req.params, 'params');
    res.json(await agents.get(id));
  }));

  r.delete('/:id', route(async (req, res) => {
    const { id } = parse(IdParams, req.params, 'params');
    const q = parse(TerminateQuery, req.query, 'query');
    res.status(202).json(await agents.terminate(id, q.graceMs, q.reason));
  }));

  r.post('/:id/heartbeat', route(async (req, res) => {
    const { id } = parse(IdParams, req.params, 'params');
    parse(Empty, req.body ?? {}, 'body');
    await agents.heartbeat(id);
    res.status(202).json({ accepted: true });
  }));

  r.post('/:id/progress', route(async (req, res) => {
    const { id } = parse(IdParams, req.params, 'params');
    const body = parse(ProgressReport, req.body ?? {}, 'body');
    await agents.progress(id, body.percent, body.message);
    res.status(202).json({ accepted: true });
  }));

  return r;
}
