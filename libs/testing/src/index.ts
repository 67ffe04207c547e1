export * from './services.js';
export * from './worker-process.js';
export * from './coordinator-process.js';
export * from './dev-services.js';
export * from './cluster.js';
