/**
 * Temporal's remote codec protocol, for the Web UI (and `temporal workflow show --codec-endpoint`): `POST
 * /codec/decode` and `POST /codec/encode`, each `{payloads: [{metadata: {key: base64}, data: base64}]}` in and out.
 * Admin token only: without it the UI shows the ciphertext Temporal stores. The browser calls it from the UI's
 * origin, so those origins get CORS (with credentials and the Authorization header). A payload the codec cannot
 * authenticate decodes to FleetTools' marker (domain/payload-guard.ts), never to its plaintext.
 */
import express, { type Express, type RequestHandler } from 'express';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import { invalid } from '../services/errors';
import type { Authenticator } from './auth';

/** Payloads in a request, at most: a history page's worth and more (the body is also limited to 4 MB). */
const MAX_PAYLOADS = 10_000;
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const JsonPayload = z.object({ metadata: z.record(z.string(), Base64).optional(), data: Base64.optional() });
export const CodecRequest = z.object({ payloads: z.array(JsonPayload).max(MAX_PAYLOADS) });
type JsonPayload = z.infer<typeof JsonPayload>;

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

/** The origins a browser may call from (the Web UI's), with 127.0.0.1 and localhost both when it is on loopback. */
export function codecOrigins(uiUrl: string | null): string[] {
  if (!uiUrl) return [];
  const u = new URL(uiUrl);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'];
  if (!loopback.includes(u.hostname)) return [u.origin];
  return loopback.map((h) => `${u.protocol}//${h}${u.port ? `:${u.port}` : ''}`);
}

function cors(origins: string[]): RequestHandler {
  return (req, res, next) => {
    const origin = req.get('origin');
    if (origin && origins.includes(origin)) {
      res.set({
        'Access-Control-Allow-Origin': origin,
        'Access-Control-Allow-Credentials': 'true',
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': 'Authorization, Content-Type, X-Namespace',
        'Access-Control-Max-Age': '600',
      });
    }
    res.vary('Origin');
    // A preflight carries no credentials: answered here, for any origin (only the allowed ones get the headers).
    if (req.method === 'OPTIONS') res.status(204).end();
    else next();
  };
}

export const CODEC_COOKIE = 'fleet_codec_token';

function cookieToken(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === CODEC_COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

const LOGIN_FORM = `<!doctype html><meta charset="utf-8"><title>FleetTools: decode payloads in the Temporal Web UI</title>
<form method="post" action="/codec/login"><p>Paste the FleetTools API token (&lt;data dir&gt;/api-token) to let this
browser's Temporal Web UI decode payloads through this API.</p><input type="password" name="token" size="60" autofocus>
<button>Sign in</button></form>`;

/**
 * A browser's sign-in for the Web UI's codec calls: the token, posted from a form (never in a URL), becomes an
 * HttpOnly, SameSite=Strict cookie for /codec only. The UI (another port of the same host: the same site) sends it
 * with its codec setting "Include cross-origin credentials".
 */
function registerLogin(app: Express, auth: Authenticator): void {
  app.get('/codec/login', (_req, res) => {
    res.type('html').send(LOGIN_FORM);
  });
  app.post('/codec/login', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    const token = z.object({ token: z.string().min(1) }).safeParse(req.body);
    if (!token.success || !auth.isAdmin(token.data.token)) {
      res.status(401).type('text').send('wrong token');
      return;
    }
    res.cookie(CODEC_COOKIE, token.data.token, { httpOnly: true, sameSite: 'strict', path: '/codec' });
    res
      .type('text')
      .send(
        'Signed in: the Temporal Web UI in this browser decodes payloads now (its codec setting "Include cross-origin credentials" must be on).',
      );
  });
}

export function registerCodecRoutes(app: Express, auth: Authenticator, codec: PayloadCodec, origins: string[]): void {
  app.use('/codec', cors(origins));
  // The token before the body: nobody without it makes the API read 4 MB. The bearer token, or the cookie that
  // /codec/login sets (the Web UI's browser sends it with "Include cross-origin credentials" on).
  const admin: RequestHandler = (req, _res, next) => {
    const cookie = cookieToken(req.get('cookie'));
    if (!req.get('authorization') && cookie !== undefined && auth.isAdmin(cookie)) return next();
    auth.authenticate(req, 'admin');
    next();
  };
  registerLogin(app, auth);
  for (const op of ['decode', 'encode'] as const) {
    app.post(`/codec/${op}`, admin, express.json({ limit: '4mb', strict: true }), (req, res, next) => {
      (async () => {
        const parsed = CodecRequest.safeParse(req.body);
        if (!parsed.success) throw invalid('body', parsed.error);
        const payloads = parsed.data.payloads.map(fromJson);
        const out = op === 'decode' ? await codec.decode(payloads) : await codec.encode(payloads);
        res.status(200).json({ payloads: out.map(toJson) });
      })().catch(next);
    });
  }
}
