// The engine's Node-only surface: every adapter Dawn sees and what the host lacks for its GPU (for
// `hvp doctor`). Browser code imports engine/index.ts, never this.
export { listAdapters, explainHost, type AdapterReport } from './dawn-node.js';
export { gatherHostFacts, diagnose, formatDiagnosis, unusedGpuWarning, type HostFacts, type Diagnosis } from './host-gpu.mjs';
