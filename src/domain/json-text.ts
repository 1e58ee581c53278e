/**
 * JSON text safe to print to a terminal: the data exactly. JSON.stringify escapes the C0 controls but leaves DEL and
 * the C1 controls (U+007F–U+009F, such as U+009B, an 8-bit CSI) as they are: they are escaped too (\u009b), the same
 * JSON. Used by the CLI's --json output and by the structured logs, both of which can quote what an agent wrote.
 */
export function jsonText(value: unknown, indent?: number): string {
  return String(JSON.stringify(value, null, indent)).replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
