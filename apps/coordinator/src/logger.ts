/** pino loggers: one root per coordinator, named children (`logger.child({ component })`). */
import type { LoggerService } from '@nestjs/common';
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/**
 * The coordinator's root logger: JSON lines on stdout, written synchronously so that they never
 * interleave with the machine-readable lines main.ts prints.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'coordinator' },
      // Credentials never reach the logs.
      redact: ['req.headers.authorization', 'req.headers["x-api-key"]', 'secret', 'token', 'key'],
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

/** Nest's own messages (module wiring, route mapping) at debug level through pino. */
export class NestPinoLogger implements LoggerService {
  private readonly pino: Logger;
  constructor(root: Logger) {
    this.pino = root.child({ component: 'nest' });
  }
  private write(level: 'debug' | 'warn' | 'error' | 'trace', message: unknown, rest: unknown[]): void {
    const context = typeof rest[rest.length - 1] === 'string' ? rest[rest.length - 1] : undefined;
    this.pino[level]({ context }, String(message));
  }
  log(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }
}
