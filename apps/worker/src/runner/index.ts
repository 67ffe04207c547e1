export * from './faults.js';
export * from './micro-batch.js';
export * from './model-state.js';
export * from './nats-connect.js';
export * from './replay.js';
export * from './roster-watch.js';
export * from './shard-source.js';
export * from './training-runner.js';
