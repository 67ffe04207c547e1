/** Nest injection tokens for the coordinator's runtime values. */
export const CONFIG = Symbol('gradpool.config');
export const DATABASE = Symbol('gradpool.database');
export const NATS = Symbol('gradpool.nats');
export const LOGGER = Symbol('gradpool.logger');
