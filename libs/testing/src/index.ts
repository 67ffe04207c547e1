export * from './services.js';
export * from './worker-process.js';
