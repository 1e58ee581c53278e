/** The OpenAPI 3.0 document, generated from the route registry's zod schemas. */
import { z } from 'zod';
import { ErrorBody } from '../domain/api';
import type { RouteSpec } from './route-registry';

type Json = Record<string, unknown>;

const toSchema = (s: z.ZodType, io: 'input' | 'output'): Json =>
  z.toJSONSchema(s, {
    target: 'openapi-3.0',
    io,
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => agree(zodSchema, jsonSchema, io),
  });

/**
 * What the server accepts, stated whole, so that the document and the server agree:
 * - a pipe of one string schema into another (`NoNul('cwd').pipe(z.string().min(1)...)`): zod documents a request by
 *   the first alone; the value must pass both, so the second's constraints (length, pattern) are added;
 * - patterns: the server's are JavaScript regular expressions, in which `\w` and `\d` are ASCII only, while tools
 *   that read the document (schemathesis, in Python) take them as any Unicode letter or digit: they are spelt out.
 */
function agree(zodSchema: z.core.$ZodType, json: Json, io: 'input' | 'output'): void {
  const def = zodSchema._zod.def as { type: string; in?: z.core.$ZodType; out?: z.core.$ZodType };
  if (io === 'input' && def.type === 'pipe' && def.in?._zod.def.type === 'string' && def.out?._zod.def.type === 'string') {
    const out = toSchema(def.out as z.ZodType, io);
    for (const [k, v] of Object.entries(out)) {
      if (k === '$schema') continue;
      if (!(k in json)) json[k] = v;
      else if (JSON.stringify(json[k]) !== JSON.stringify(v)) ((json.allOf ??= []) as Json[]).push({ [k]: v });
    }
  }
  for (const part of [json, ...((json.allOf as Json[] | undefined) ?? [])])
    if (typeof part.pattern === 'string') part.pattern = asciiClasses(part.pattern);
}

/** `\w` and `\d` spelt out as the ASCII classes they are in JavaScript (inside a character class too). */
export function asciiClasses(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const n = pattern[i + 1] ?? '';
      i++;
      const spelt = n === 'w' ? 'A-Za-z0-9_' : n === 'd' ? '0-9' : null;
      out += spelt === null ? `\\${n}` : inClass ? spelt : `[${spelt}]`;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    out += c;
  }
  return out;
}

export function openApiDocument(specs: RouteSpec[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of specs) {
    const path = `/api/v1${spec.path.replace(/:(\w+)/g, '{$1}')}`;
    const parameters: unknown[] = [];
    for (const [where, obj] of [
      ['path', spec.params],
      ['query', spec.query],
    ] as const) {
      if (!obj) continue;
      const json = toSchema(obj, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(json.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (json.required ?? []).includes(name), schema });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(spec.responses)) {
      const content: Record<string, unknown> = {};
      if (r.schema) content['application/json'] = { schema: toSchema(r.schema, 'output') };
      // OpenAPI 3.0 has no schema for a stream as a whole: as tools (schemathesis) read it, the
      // schema of text/event-stream is that of each event ({event, data, id?, retry?}).
      if (r.stream) content['text/event-stream'] = { schema: toSchema(r.stream, 'output') };
      responses[status] = { description: r.description, ...(Object.keys(content).length ? { content } : {}) };
    }
    // What any route may answer besides its own: auth, and what the HTTP layer refuses before the route runs.
    const error = (description: string) => ({ description, content: { 'application/json': { schema: toSchema(ErrorBody, 'output') } } });
    if (spec.access !== 'public') {
      responses['401'] = error('missing or wrong bearer token, or the token of an agent that has ended (answered before the body is read)');
      responses['403'] ??= error('an agent token where it may not act (an admin route, or another agent)');
    }
    if (spec.body) {
      responses['413'] ??= error(`the request body is larger than this route takes (${spec.bodyLimit ?? 'its limit'} bytes)`);
      responses['415'] ??= error('the request body is not JSON (send Content-Type: application/json)');
    }
    responses['431'] = error('the request line and headers are too large (over 64 KiB): shorten the query string');
    paths[path] ??= {};
    paths[path][spec.method] = {
      summary: spec.summary,
      operationId: `${spec.method}${spec.path.replace(/[/:-](\w)/g, (_m, c: string) => c.toUpperCase())}`,
      ...(parameters.length ? { parameters } : {}),
      ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema(spec.body, 'input') } } } } : {}),
      responses,
      ...(spec.access === 'public' ? { security: [] } : {}),
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'FleetTools API', version, description: 'Run fleets of AI coding agents as durable Temporal workflows.' },
    servers: [{ url: '/' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
