/**
 * The Express app: bearer auth on everything but /health, checked before any body is read; JSON bodies limited per
 * route (route-registry.ts); one error shape.
 */
import express, { type Express } from 'express';
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { AgentService, type AgentServiceOptions } from '../services/agent-service';
import { registerAgentRoutes } from './agents-routes';
import type { CheckpointStore } from '../store/checkpoint-store';
import { COORDINATION_WORKFLOW_ID } from '../domain/coordination';
import { CheckpointService } from '../services/checkpoint-service';
import { CoordinationService } from '../services/coordination-service';
import { registerCoordinationRoutes } from './coordination-routes';
import { MissionService } from '../services/mission-service';
import { registerMissionRoutes } from './missions-routes';
import { AgentLiveness, Authenticator, describeAgent } from './auth';
import { ApiError, errorHandler } from './errors';
import { openApiDocument } from './openapi';
import { RouteRegistry } from './route-registry';
import { codecOrigins, registerCodecRoutes } from './codec-routes';
import type { PayloadCodec } from '@temporalio/common';

export interface AppOptions extends Omit<AgentServiceOptions, 'cursorKey'> {
  token: string;
  /** The checkpoint store (the workers' activities write to the same file). */
  store: CheckpointStore;
  /** Workflow id of the CoordinationWorkflow (locks and messages); one per namespace by default. */
  coordinationId?: string;
  /** Where the workers on this host write agent logs (`fleet up`: <data dir>/logs); null: no log routes. */
  logsDir: string | null;
  /** The largest body of a route that names no limit of its own, in bytes (default: DEFAULT_BODY_LIMIT). */
  bodyLimit?: number;
  /** The codec of the API's client: served to the Web UI at /codec/decode and /codec/encode (admin token). */
  payloadCodec: PayloadCodec;
}

const VERSION: string = require('../../../package.json').version;

export function createApp(opts: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', version: VERSION });
  });

  const auth = new Authenticator(opts.token, new AgentLiveness(describeAgent(opts.client)));
  registerCodecRoutes(app, auth, opts.payloadCodec, codecOrigins(opts.uiBaseUrl));
  const routes = new RouteRegistry(auth, opts.bodyLimit);
  const cursorKey = createHmac('sha256', opts.token).update('fleettools cursor v1').digest();
  const agents = new AgentService({ ...opts, cursorKey });
  const coordination = new CoordinationService(opts.client, opts.coordinationId ?? COORDINATION_WORKFLOW_ID, opts.defaultQueue);
  const missions = new MissionService({ ...opts, agents, coordination });
  const checkpoints = new CheckpointService({ client: opts.client, store: opts.store, missions, agents, coordination });
  registerAgentRoutes(routes, agents, opts.logsDir);
  registerMissionRoutes(routes, missions, checkpoints);
  registerCoordinationRoutes(routes, coordination, agents);
  routes.add(
    {
      method: 'get',
      path: '/openapi.json',
      summary: 'This document',
      access: 'admin',
      responses: { 200: { description: 'OpenAPI 3.0', schema: z.record(z.string(), z.unknown()) } },
    },
    async () => [200, document],
  );
  const document = openApiDocument(routes.specs, VERSION);

  // The methods a path takes: those of the routes it matches most closely (a literal segment over a
  // parameter: /agents/spawn is POST only, although /agents/:id would match it too). For OPTIONS
  // (Allow, answered here rather than by Express, which lists every route that matches) and for 405.
  const known = routes.specs.map((s) => ({
    method: s.method.toUpperCase(),
    params: (s.path.match(/:\w+/g) ?? []).length,
    path: new RegExp(`^/api/v1${s.path.replace(/:\w+/g, '[^/]+')}/?$`),
  }));
  const methodsOf = (path: string): string[] => {
    const matching = known.filter((k) => k.path.test(path));
    const closest = Math.min(...matching.map((k) => k.params));
    const methods = [...new Set(matching.filter((k) => k.params === closest).map((k) => k.method))];
    return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
  };
  app.use('/api/v1', (req, res, next) => {
    const methods = methodsOf(req.originalUrl.split('?')[0]!);
    if (!methods.length || methods.includes(req.method)) return next();
    if (req.method === 'OPTIONS') {
      res
        .set('Allow', [...methods, 'OPTIONS'].join(', '))
        .status(204)
        .end();
      return;
    }
    // A path the API has, with a method it does not: 405 naming the methods it takes (Allow), not
    // 404, nor a 400 from the route a parameter would match (GET /agents/spawn is not GET /agents/:id).
    res.set('Allow', methods.join(', '));
    next(
      new ApiError(
        405,
        'method_not_allowed',
        `${req.method} is not a method of ${req.originalUrl.split('?')[0]}; it takes ${methods.join(', ')}`,
      ),
    );
  });

  // No body parser here: each route reads its own body, with its own limit, once the caller may call it.
  app.use('/api/v1', routes.router);
  app.use((req, _res, next) => next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler);
  return app;
}
