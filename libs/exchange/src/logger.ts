import { pino } from 'pino';

/** The data plane's logger; child loggers carry `jobId`, `round`, `workerId`. */
export const logger = pino({ name: 'exchange', level: process.env.GRADPOOL_LOG_LEVEL ?? 'info' });
