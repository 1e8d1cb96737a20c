/**
 * API tokens. A token is `isola_` followed by 32 random bytes in base64url (256 bits, so a plain
 * sha256 is a safe verifier: no salt or slow hash is needed against guessing). Only the sha256 hex
 * digest is ever stored; the token itself is shown once, when it is created.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Prefix of every token isola issues (lets secret scanners recognise them). */
export const TOKEN_PREFIX = 'isola_';

/** A new random token: `isola_` + 43 base64url characters. */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/** The stored form of a token: sha256, lowercase hex. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Compares a presented token with an expected one in time independent of where they differ
 * (both are hashed first, so the lengths compared are always equal).
 */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** Compares two hex digests of equal length in constant time (false when lengths differ). */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
