/** The Express app: JSON bodies (size-limited), bearer auth on everything but /health, one error shape. */
import express, { type Express } from 'express';
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { AgentService, type AgentServiceOptions } from './agent-service';
import { registerAgentRoutes } from './agents-routes';
import { Authenticator } from './auth';
import { ApiError, errorHandler } from './errors';
import { openApiDocument } from './openapi';
import { RouteRegistry } from './route-registry';

export interface AppOptions extends Omit<AgentServiceOptions, 'cursorKey'> {
  token: string;
  /** Where the workers on this host write agent logs (`fleet up`: <data dir>/logs); null: no log routes. */
  logsDir: string | null;
  bodyLimit?: string;
}

const VERSION: string = require('../../../package.json').version;

export function createApp(opts: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', version: VERSION });
  });

  const routes = new RouteRegistry(new Authenticator(opts.token));
  const cursorKey = createHmac('sha256', opts.token).update('fleettools cursor v1').digest();
  registerAgentRoutes(routes, new AgentService({ ...opts, cursorKey }), opts.logsDir);
  routes.add(
    { method: 'get', path: '/openapi.json', summary: 'This document', access: 'admin', responses: { 200: { description: 'OpenAPI 3.0', schema: z.record(z.string(), z.unknown()) } } },
    async () => [200, document],
  );
  const document = openApiDocument(routes.specs, VERSION);

  app.use('/api/v1', express.json({ limit: opts.bodyLimit ?? '256kb', strict: true }), routes.router);
  app.use((req, _res, next) => next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler);
  return app;
}
