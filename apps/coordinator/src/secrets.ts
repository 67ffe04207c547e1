/** Credentials (API keys, join tokens, session secrets): random, shown once, stored as sha256. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_PREFIX = { apiKey: 'gpk', joinToken: 'gpj', sessionSecret: 'gps' } as const;

/** A fresh credential `<kind>_<32 random bytes, base64url>`. */
export function generateSecret(kind: string): string {
  return `${kind}_${randomBytes(32).toString('base64url')}`;
}

/** Hex sha256 of a credential: what the database stores. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** First characters of a credential, safe to display and log. */
export function displayPrefix(secret: string): string {
  return secret.slice(0, 10);
}

/** Constant-time comparison of a presented credential with a stored hash. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Whether `s` is a UUID (ids that are not cannot name a row; Postgres would reject them). */
export function isUuid(s: string): boolean {
  return UUID.test(s);
}
