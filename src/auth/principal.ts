import { FULL_GRANT, NO_GRANT, type Grant } from './scopes.js';

/** Who is calling, as far as the gateway knows. */
export interface Principal {
  /** `open`: auth is not configured and everyone may do everything. */
  readonly kind: 'open' | 'anonymous' | 'api-key' | 'jwt';
  /** The API key's name or the token's subject, for logs. */
  readonly name: string;
  readonly grant: Grant;
  /** When the credential stops being valid (JWT `exp`), in epoch ms. */
  readonly expiresAt?: number | undefined;
}

export const OPEN_PRINCIPAL: Principal = { kind: 'open', name: 'anyone', grant: FULL_GRANT };
export const ANONYMOUS: Principal = { kind: 'anonymous', name: 'anonymous', grant: NO_GRANT };
