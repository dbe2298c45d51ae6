import { createHash, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errors as joseErrors, importSPKI, jwtVerify, type JWTPayload } from 'jose';
import type { AuthConfig } from '../config/config.js';
import { ConfigError, GatewayError } from '../errors.js';
import { ANONYMOUS, OPEN_PRINCIPAL, type Principal } from './principal.js';
import { grantOf } from './scopes.js';

/** Credentials were presented and are not valid. (No credentials at all is not an error: anonymous.) */
export class UnauthenticatedError extends GatewayError {
  override readonly code = 'UNAUTHENTICATED';
  override readonly expose = true;
}

/** Where a caller's credentials were found: HTTP headers or a graphql-ws `connection_init` payload. */
export interface Credentials {
  /** `Bearer <JWT>` */
  readonly authorization?: string | null | undefined;
  readonly apiKey?: string | null | undefined;
}

export interface Authenticator {
  /** False when no auth is configured: everyone is `OPEN_PRINCIPAL`. */
  readonly enabled: boolean;
  /** Resolves once the verification key is loaded; rejects with `ConfigError` if it cannot be. */
  ready(): Promise<void>;
  authenticate(credentials: Credentials): Promise<Principal>;
}

export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * API keys are compared by their SHA-256 (the configuration holds hashes only), in constant
 * time; JWTs are verified with jose against the configured key, algorithms, issuer and audience.
 */
export function createAuthenticator(config: AuthConfig | undefined, env: Record<string, string | undefined> = process.env): Authenticator {
  if (!config) return { enabled: false, ready: async () => undefined, authenticate: async () => OPEN_PRINCIPAL };
  const keys = config.apiKeys.map((k) => ({ name: k.name, hash: Buffer.from(k.sha256, 'hex'), grant: grantOf(k.scopes) }));
  const jwt = config.jwt;
  const loading = jwt ? loadKey(jwt, env) : Promise.resolve(undefined);
  // Surfaced by ready() at start; kept from becoming an unhandled rejection meanwhile.
  loading.catch(() => undefined);

  const byApiKey = (presented: string): Principal => {
    const hash = createHash('sha256').update(presented).digest();
    // Compare against every key (no early exit), so timing says nothing about which matched.
    let found: (typeof keys)[number] | undefined;
    for (const key of keys) if (timingSafeEqual(key.hash, hash) && !found) found = key;
    if (!found) throw new UnauthenticatedError('invalid API key');
    return { kind: 'api-key', name: found.name, grant: found.grant };
  };

  const byJwt = async (token: string): Promise<Principal> => {
    const verificationKey = await loading;
    if (!jwt || !verificationKey) throw new UnauthenticatedError('bearer tokens are not accepted here (no JWT configured)');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, verificationKey, {
        issuer: jwt.issuer,
        audience: jwt.audience,
        algorithms: jwt.algorithms,
        clockTolerance: jwt.clockToleranceSec,
      }));
    } catch (error) {
      throw new UnauthenticatedError(`invalid token: ${jwtProblem(error)}`, { cause: error });
    }
    return {
      kind: 'jwt',
      name: payload.sub ?? 'token',
      grant: grantOf(scopesFrom(payload[jwt.scopesClaim])),
      expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000,
    };
  };

  return {
    enabled: true,
    ready: async () => void (await loading),
    async authenticate(credentials) {
      if (credentials.apiKey) return byApiKey(credentials.apiKey);
      const authorization = credentials.authorization?.trim();
      if (!authorization) return ANONYMOUS;
      const match = /^Bearer\s+(\S+)$/i.exec(authorization);
      if (!match) throw new UnauthenticatedError('the authorization header must be "Bearer <token>"');
      return byJwt(match[1]!);
    },
  };
}

async function loadKey(jwt: NonNullable<AuthConfig['jwt']>, env: Record<string, string | undefined>): Promise<KeyObject | CryptoKey> {
  if (jwt.secretEnv) {
    const secret = env[jwt.secretEnv];
    if (!secret) throw new ConfigError(`auth.jwt.secretEnv: environment variable ${jwt.secretEnv} is not set`);
    if (Buffer.byteLength(secret) < 32) throw new ConfigError(`auth.jwt.secretEnv: ${jwt.secretEnv} must hold at least 32 bytes`);
    return createSecretKey(Buffer.from(secret));
  }
  let pem: string;
  try {
    pem = readFileSync(jwt.publicKeyFile!, 'utf8');
  } catch (cause) {
    throw new ConfigError(`auth.jwt.publicKeyFile: cannot read ${jwt.publicKeyFile} (${(cause as NodeJS.ErrnoException).code})`, { cause });
  }
  try {
    return await importSPKI(pem, jwt.algorithms[0]!);
  } catch (cause) {
    throw new ConfigError(`auth.jwt.publicKeyFile: ${jwt.publicKeyFile} is not a PEM public key for ${jwt.algorithms[0]}`, { cause });
  }
}

function scopesFrom(claim: unknown): string[] {
  if (typeof claim === 'string') return claim.split(/\s+/).filter(Boolean);
  if (Array.isArray(claim)) return claim.filter((s): s is string => typeof s === 'string');
  return [];
}

/** A short reason a client can act on, without echoing the token. */
function jwtProblem(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed)
    return `claim "${error.claim}" ${error.reason === 'check_failed' ? 'does not match' : error.reason}`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) return 'malformed';
  return 'could not be verified';
}
