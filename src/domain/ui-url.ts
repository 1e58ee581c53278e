/** Link to a workflow in the Temporal Web UI. */
export function workflowUiUrl(uiBaseUrl: string | null, namespace: string, workflowId: string): string | null {
  if (!uiBaseUrl) return null;
  return `${uiBaseUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
