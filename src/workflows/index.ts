/** Entry point of the workflow bundle: every workflow the worker runs. */
export { AgentWorkflow } from './agent-workflow';
export { CoordinationWorkflow } from './coordination-workflow';
export { MissionWorkflow } from './mission-workflow';
