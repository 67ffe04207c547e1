/** The coordinator as a library: start it in-process (tests, demo) and extend it. */
export { startCoordinator, redactUrl, type CoordinatorHandle, type StartOptions } from './app.js';
export { AppModule, FEATURE_MODULES } from './app.module.js';
export { CoreModule, REPOSITORIES, type CoordinatorRuntime } from './core.module.js';
export { toConfig, ConfigError, ENV_VARS, DEFAULT_DATABASE_URL, DEFAULT_NATS_URL, type CoordinatorConfig, type Env } from './config.js';
export * from './errors.js';
export { CONFIG, DATABASE, NATS, LOGGER } from './tokens.js';
export { createLogger, type Logger } from './logger.js';
export { CoordinatorMetrics } from './metrics.js';
export { SessionRegistry, type SessionChannel, type SessionCloseReason, type WorkerMessageEvents } from './services/session-registry.js';
export { WorkerService, type WorkerView } from './services/worker.service.js';
export { SessionService } from './services/session.service.js';
export { WorkersModule } from './workers.module.js';
export { Public, Roles, CurrentPrincipal } from './auth/auth.decorators.js';
export { assertGroupAccess, type Principal, type ApiKeyRole } from './auth/principal.js';
export { ZodValidationPipe, openApiSchema, describeZodError } from './http/zod-validation.pipe.js';
