export * from './permissions.js';
export * from './operator.js';
export * from './worker-credentials.js';
export * from './filtered-feed.js';
export * from './nats-retry.js';
export * from './revocations.js';
