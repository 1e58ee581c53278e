/**
 * A validation error's issues as text naming each field: `request.retry: Required; env.FLEET_X: …`. It takes the
 * issues' shape, not a zod type, so that workflow code can use it without loading zod (see agent-constants.ts).
 */
export function issuesText(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  opts: { root?: string; separator?: string } = {},
): string {
  return issues.map((i) => `${i.path.map(String).join('.') || (opts.root ?? '(root)')}: ${i.message}`).join(opts.separator ?? '; ');
}
