export * from './codecs/index.js';
export * from './errors.js';
export * from './header.js';
export * from './layout.js';
export * from './round-exchange.js';
export { GatherObserver, type ObservedRound, type GatherObserverOptions } from './gather-observer.js';
export { logger } from './logger.js';
export { OwnerAuditor, type AuditResult, type OwnerAuditOptions } from './owner-audit.js';
export * from './replay.js';
