/** The Express app: JSON bodies (size-limited), bearer auth on everything but /health, one error shape. */
import express, { type Express } from 'express';
import { AgentService, type AgentServiceOptions } from './agent-service';
import { agentsRouter } from './agents-routes';
import { bearerAuth } from './auth';
import { ApiError, errorHandler } from './errors';

export interface AppOptions extends AgentServiceOptions {
  token: string;
  bodyLimit?: string;
}

export function createApp(opts: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.use('/api/v1', bearerAuth(opts.token), express.json({ limit: opts.bodyLimit ?? '256kb', strict: true }));
  app.use('/api/v1/agents', agentsRouter(new AgentService(opts)));
  app.use((req, _res, next) => next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler);
  return app;
}
