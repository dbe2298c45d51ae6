import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAuthenticator, sha256Hex, UnauthenticatedError } from '../../src/auth/authenticator.js';
import { allows, target } from '../../src/auth/scopes.js';
import { parseConfigFile } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';
const hs = { issuer: 'https://auth.test', audience: 'event-gateway', secretEnv: 'TEST_JWT_SECRET', algorithms: ['HS256'] };
const sign = (claims: Record<string, unknown>, options: { exp?: string; iss?: string; aud?: string; key?: Uint8Array } = {}) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(options.iss ?? hs.issuer)
    .setAudience(options.aud ?? hs.audience)
    .setSubject('user-1')
    .setExpirationTime(options.exp ?? '5m')
    .sign(options.key ?? new TextEncoder().encode(SECRET));

const authConfig = (auth: unknown) => parseConfigFile({ auth }).auth!;

describe('authenticator', () => {
  it('runs open when auth is not configured', async () => {
    const authenticator = createAuthenticator(undefined);
    expect(authenticator.enabled).toBe(false);
    expect((await authenticator.authenticate({})).kind).toBe('open');
  });

  it('accepts an API key by its SHA-256 and grants its scopes', async () => {
    const authenticator = createAuthenticator(authConfig({ apiKeys: [{ name: 'shop', sha256: sha256Hex('k-123'), scopes: ['publish:orders.*'] }] }));
    const principal = await authenticator.authenticate({ apiKey: 'k-123' });
    expect(principal).toMatchObject({ kind: 'api-key', name: 'shop' });
    expect(allows(principal.grant, 'publish', [target('orders', 'x')])).toBe(true);
    await expect(authenticator.authenticate({ apiKey: 'k-124' })).rejects.toThrow(new UnauthenticatedError('invalid API key'));
    expect((await authenticator.authenticate({})).kind).toBe('anonymous');
  });

  it('verifies HS256 tokens: signature, issuer, audience, expiry; scopes from the scope claim', async () => {
    const authenticator = createAuthenticator(authConfig({ jwt: hs }), { TEST_JWT_SECRET: SECRET });
    await authenticator.ready();
    const principal = await authenticator.authenticate({ authorization: `Bearer ${await sign({ scope: 'subscribe:orders.* admin' })}` });
    expect(principal).toMatchObject({ kind: 'jwt', name: 'user-1' });
    expect(principal.grant.admin).toBe(true);
    expect(principal.expiresAt).toBeGreaterThan(Date.now());
    const rejected = async (token: string) => authenticator.authenticate({ authorization: `Bearer ${token}` }).catch((e: Error) => e.message);
    expect(await rejected(await sign({}, { exp: '-2m' }))).toBe('invalid token: expired');
    expect(await rejected(await sign({}, { aud: 'someone-else' }))).toMatch(/claim "aud"/);
    expect(await rejected(await sign({}, { iss: 'https://evil.test' }))).toMatch(/claim "iss"/);
    expect(await rejected(await sign({}, { key: new TextEncoder().encode('another-secret-of-thirty-two-bytes!!') }))).toBe(
      'invalid token: signature does not verify',
    );
    expect(await rejected('not.a.jwt')).toBe('invalid token: malformed');
    await expect(authenticator.authenticate({ authorization: 'Basic abc' })).rejects.toThrow(/Bearer/);
  });

  it('verifies RS256 tokens with a PEM public key, scopes from an array claim', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const file = join(mkdtempSync(join(tmpdir(), 'gw-jwt-')), 'public.pem');
    writeFileSync(file, await exportSPKI(publicKey));
    const authenticator = createAuthenticator(
      authConfig({ jwt: { issuer: hs.issuer, audience: hs.audience, publicKeyFile: file, algorithms: ['RS256'], scopesClaim: 'scopes' } }),
    );
    await authenticator.ready();
    const token = await new SignJWT({ scopes: ['publish:orders.*'] })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(hs.issuer)
      .setAudience(hs.audience)
      .setExpirationTime('5m')
      .sign(privateKey);
    const principal = await authenticator.authenticate({ authorization: `Bearer ${token}` });
    expect(allows(principal.grant, 'publish', [target('orders', 'a')])).toBe(true);
    // An HS256 token signed with the public key must not pass as RS256 (algorithm confusion).
    const forged = await new SignJWT({ scopes: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(hs.issuer)
      .setAudience(hs.audience)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(await exportSPKI(publicKey)));
    await expect(authenticator.authenticate({ authorization: `Bearer ${forged}` })).rejects.toThrow(/algorithm not allowed/);
  });

  it('refuses to start without its key', async () => {
    await expect(createAuthenticator(authConfig({ jwt: hs }), {}).ready()).rejects.toThrow(ConfigError);
    await expect(createAuthenticator(authConfig({ jwt: hs }), {}).ready()).rejects.toThrow(/TEST_JWT_SECRET is not set/);
    await expect(
      createAuthenticator(authConfig({ jwt: { ...hs, secretEnv: undefined, publicKeyFile: '/nope.pem', algorithms: ['RS256'] } })).ready(),
    ).rejects.toThrow(/cannot read \/nope.pem/);
  });

  it.each([
    [{ apiKeys: [{ name: 'x', sha256: 'plaintext-key', scopes: [] }] }, 'auth.apiKeys[0].sha256'],
    [{ apiKeys: [{ name: 'x', sha256: sha256Hex('k'), scopes: ['write:orders'] }] }, 'auth.apiKeys[0].scopes[0]'],
    [{ jwt: { ...hs, publicKeyFile: '/k.pem' } }, 'exactly one of secretEnv'],
    [{ jwt: { ...hs, algorithms: ['RS256'] } }, 'algorithms must be HS*'],
    [{}, 'configure apiKeys, jwt, or both'],
  ])('names the problem in a bad auth config: %j', (auth, expected) => {
    expect(() => parseConfigFile({ auth })).toThrow(expected);
  });
});
