/**
 * `npm run auth:new-key -- <name> [scope …]`: makes a random API key, prints it once, and prints
 * the entry for the config file, which holds only the key's SHA-256 (keys are hashed at rest).
 */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../src/auth/authenticator.js';

const [name = 'my-service', ...scopes] = process.argv.slice(2);
const key = `egw_${randomBytes(32).toString('base64url')}`;
const entry = { name, sha256: sha256Hex(key), scopes: scopes.length > 0 ? scopes : ['publish:*'] };

process.stdout.write(`API key (shown once; send it as the x-api-key header):\n  ${key}\n\n`);
process.stdout.write(`Add to "auth": { "apiKeys": [ … ] } in the GATEWAY_CONFIG file:\n  ${JSON.stringify(entry)}\n`);
