// Test-only OpenID Provider for roleledger's OIDC tests: oidc-provider 8.8.1 (certified), on loopback, over http.
//
// Prints exactly one line to stdout when ready:   READY <issuer-url>      (e.g. READY http://127.0.0.2:41234)
// Everything else (oidc-provider warnings, request log) goes to stderr. Runs until SIGTERM/SIGINT (exits at once).
//
// Environment (all optional):
//   OIDC_HOST                       listen address and issuer host (default 127.0.0.2; the server under test uses
//                                   127.0.0.1, so the provider's return to it is a cross-site navigation)
//   OIDC_PORT                       port, 0 = pick a free one (default 0)
//   OIDC_CLIENT_ID                  the server's client (default roleledger)
//   OIDC_CLIENT_SECRET              its secret (default roleledger-secret)
//   OIDC_REDIRECT_URIS              comma-separated (default http://127.0.0.1:8080/ui/oidc/callback)
//   OIDC_POST_LOGOUT_REDIRECT_URIS  comma-separated (default http://127.0.0.1:8080/ui, http://127.0.0.1:8080/ui/signin)
//   OIDC_TOKEN_AUTH_METHOD          client_secret_basic (default) or client_secret_post, for both clients
//   OIDC_OTHER_CLIENT_ID            second client, for "ID token for another client" (default other-client)
//   OIDC_OTHER_CLIENT_SECRET        (default other-secret)
//   OIDC_OTHER_REDIRECT_URIS        (default: same as OIDC_REDIRECT_URIS, so a code for the other client can be
//                                   delivered to the server's callback)
//   OIDC_USERS                      JSON object: account id (= sub) -> {email, name, voperson_id, roles: [..],
//                                   email_verified?, login?}. `login` is an alias to type into the login form
//                                   instead of the account id (used for the U+200B user). Default: see DEFAULT_USERS.
//                                   A login name not in OIDC_USERS is still accepted (devInteractions accepts any
//                                   login) and becomes an account with only `sub`.
//   OIDC_API_RESOURCE               resource indicator (RFC 8707) of roleledger's API (default urn:roleledger:api)
//   OIDC_API_AUDIENCE               `aud` of JWT access tokens for that resource (default: OIDC_CLIENT_ID)
//   OIDC_API_SCOPES                 scopes defined on that resource server (default "api")
//   OIDC_DEFAULT_RESOURCE           1 (default): when the client sends no `resource`, the API resource is used, so
//                                   the token endpoint returns a JWT access token for the API. 0: without `resource`
//                                   the access token is the opaque one for userinfo (oidc-provider's default).
//   OIDC_AT_CLAIMS                  comma-separated account claims copied into JWT access tokens
//                                   (default "email,name,voperson_id,roles")
//   OIDC_ACCESS_TOKEN_TTL           seconds (default 600); OIDC_ID_TOKEN_TTL seconds (default 600)
//   OIDC_LOG                        1 = log each request to stderr
//
// Test-only routes on the same port (JSON in, JSON out; POST bodies optional):
//   GET  /test/keys              {signing_kid, published: [jwk...]}
//   POST /test/rotate-keys       new RSA key (new kid) signs from now on; the old one stays in the JWKS
//   POST /test/drop-old-keys     removes every signing key but the current one from keystore and JWKS
//   POST /test/add-key           {use?: "enc"|"sig"|null, key_ops?: [..]} (default use "enc") publishes an extra
//                                RSA public key in the JWKS that the provider itself never uses; -> {kid, jwk}
//   POST /test/remove-extra-keys drops the keys added by /test/add-key
//   POST /test/mint              {type: "access"|"id", sub, client_id?, aud?, nonce?, kid?, ttl?, claims?, header?}
//                                -> {token, kid, claims}. Signs a token shaped like the provider's own (see README)
//                                with the current signing key, or with `kid` (any published key, including one from
//                                /test/add-key), or kid "unpublished" (a fresh key not in the JWKS). `claims` is merged
//                                over the defaults; a null value removes the claim.
//   POST /test/tamper-next       {claims: {...}, kid?, count?: 1} the next `count` token-endpoint responses carry an
//                                ID token re-signed with those claims merged in (null removes), e.g. {aud:"other"},
//                                {nonce:"x"}, {iss:"http://127.0.0.3:1"}; kid as for /test/mint.
//   POST /test/outage            {enabled: true|false} while enabled, every non-/test connection is reset
//                                (provider "unreachable" without losing its port, keys or sessions)
//   GET  /test/health            {ok: true}

import { createServer } from 'node:http';
import { generateKeyPairSync, createPrivateKey, sign as cryptoSign, randomBytes, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

import Provider from 'oidc-provider';

// oidc-provider's notices use console.info (stdout); keep stdout for the READY line only.
console.info = (...a) => console.error(...a);
console.log = (...a) => console.error(...a);

// Internals used for key rotation at run time (no public API for it in 8.x). Imported by file URL so they are the
// very module instances the provider uses (package "exports" blocks deep imports by bare specifier).
const require = createRequire(import.meta.url);
const libDir = join(dirname(require.resolve('oidc-provider')));
const { default: instance } = await import(pathToFileURL(join(libDir, 'helpers', 'weak_cache.js')).href);
const { default: initializeKeystore } = await import(pathToFileURL(join(libDir, 'helpers', 'initialize_keystore.js')).href);

const env = process.env;
const list = (v, d) => (v === undefined || v === '' ? d : v.split(',').map((s) => s.trim()).filter(Boolean));

const HOST = env.OIDC_HOST || '127.0.0.2';
const PORT = Number(env.OIDC_PORT || 0);
const CLIENT_ID = env.OIDC_CLIENT_ID || 'roleledger';
const CLIENT_SECRET = env.OIDC_CLIENT_SECRET || 'roleledger-secret';
const REDIRECT_URIS = list(env.OIDC_REDIRECT_URIS, ['http://127.0.0.1:8080/ui/oidc/callback']);
const POST_LOGOUT = list(env.OIDC_POST_LOGOUT_REDIRECT_URIS, ['http://127.0.0.1:8080/ui', 'http://127.0.0.1:8080/ui/signin']);
const AUTH_METHOD = env.OIDC_TOKEN_AUTH_METHOD || 'client_secret_basic';
const OTHER_ID = env.OIDC_OTHER_CLIENT_ID || 'other-client';
const OTHER_SECRET = env.OIDC_OTHER_CLIENT_SECRET || 'other-secret';
const OTHER_REDIRECTS = list(env.OIDC_OTHER_REDIRECT_URIS, REDIRECT_URIS);
const API_RESOURCE = env.OIDC_API_RESOURCE || 'urn:roleledger:api';
const API_AUDIENCE = env.OIDC_API_AUDIENCE || CLIENT_ID;
const API_SCOPES = env.OIDC_API_SCOPES ?? 'api';
const DEFAULT_RESOURCE = (env.OIDC_DEFAULT_RESOURCE ?? '1') !== '0';
const AT_CLAIMS = list(env.OIDC_AT_CLAIMS, ['email', 'name', 'voperson_id', 'roles']);
const AT_TTL = Number(env.OIDC_ACCESS_TOKEN_TTL || 600);
const ID_TTL = Number(env.OIDC_ID_TOKEN_TTL || 600);
const LOG = env.OIDC_LOG === '1';

const DEFAULT_USERS = {
  alice: { email: 'alice@example.org', name: 'Alice Example', voperson_id: 'alice-vo@egi.eu', roles: ['member'] },
  bob: { email: 'bob@example.org', name: 'Bob Example', voperson_id: 'bob-vo@egi.eu', roles: [] },
  // sub holds U+200B (ZERO WIDTH SPACE, category Cf): type "zwsp" into the login form.
  'ev\u200bil': { login: 'zwsp', email: 'evil@example.org', name: 'Zero Width', voperson_id: 'evil-vo@egi.eu', roles: [] },
};
const USERS = env.OIDC_USERS ? JSON.parse(env.OIDC_USERS) : DEFAULT_USERS;
const LOGIN_ALIASES = new Map(Object.entries(USERS).filter(([, u]) => u && u.login).map(([id, u]) => [u.login, id]));

// ---------------------------------------------------------------- keys
let keyCounter = 0;
function newRsaKey(extra = {}) {
  keyCounter += 1;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `key-${keyCounter}-${randomBytes(4).toString('hex')}`, ...extra };
}
const publicPart = ({ d, p, q, dp, dq, qi, ...pub }) => pub;

let signingKeys = [newRsaKey({ use: 'sig', alg: 'RS256' })]; // newest first: the first one signs
let extraKeys = []; // published only (private halves kept here for /test/mint)

// ---------------------------------------------------------------- html without external resources
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;

// ---------------------------------------------------------------- provider configuration
function clientMeta(client_id, client_secret, redirect_uris) {
  return {
    client_id,
    client_secret,
    redirect_uris,
    post_logout_redirect_uris: POST_LOGOUT,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: AUTH_METHOD,
  };
}

const configuration = {
  clients: [clientMeta(CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS), clientMeta(OTHER_ID, OTHER_SECRET, OTHER_REDIRECTS)],
  jwks: { keys: signingKeys },
  responseTypes: ['code'],
  cookies: {
    keys: [randomBytes(32).toString('hex')],
    // default long (session) cookie is SameSite=None, which Chromium drops on plain http (not Secure): use Lax.
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },
  pkce: { methods: ['S256'], required: () => true },
  // Scope -> claims. voperson_id and roles are released with the standard `profile` scope (so the default
  // `openid email profile` gets them) and also through their own scopes `voperson_id` and `roles`.
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'voperson_id', 'roles'],
    voperson_id: ['voperson_id'],
    roles: ['roles'],
  },
  scopes: ['openid', 'email', 'profile', 'voperson_id', 'roles', ...API_SCOPES.split(' ').filter(Boolean)],
  // Put scope-released claims in the ID token too (oidc-provider's default keeps them for userinfo only).
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    const u = USERS[id] || {};
    return {
      accountId: id,
      async claims() {
        const c = { sub: id };
        if (u.email !== undefined) { c.email = u.email; c.email_verified = u.email_verified ?? true; }
        if (u.name !== undefined) c.name = u.name;
        if (u.voperson_id !== undefined) c.voperson_id = u.voperson_id;
        if (u.roles !== undefined) c.roles = u.roles;
        return c;
      },
    };
  },
  async extraTokenClaims(ctx, token) {
    if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
    const u = USERS[token.accountId] || {};
    return Object.fromEntries(AT_CLAIMS.filter((k) => u[k] !== undefined).map((k) => [k, u[k]]));
  },
  ttl: {
    AccessToken: AT_TTL,
    AuthorizationCode: 60,
    IdToken: ID_TTL,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  features: {
    devInteractions: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Logout Request', `<h1>Do you want to sign-out from ${ctx.host}?</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Sign-out Success', '<h1>Sign-out Success</h1>');
      },
    },
    resourceIndicators: {
      enabled: true,
      async defaultResource(ctx, client, oneOf) {
        if (oneOf) return oneOf.includes(API_RESOURCE) ? API_RESOURCE : oneOf;
        return DEFAULT_RESOURCE ? API_RESOURCE : undefined;
      },
      async useGrantedResource() { return DEFAULT_RESOURCE; },
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (resourceIndicator !== API_RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: API_SCOPES,
          audience: API_AUDIENCE,
          accessTokenTTL: AT_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Error</h1><pre id="error">${String(out.error).replace(/[<&]/g, '')}</pre>
<pre id="error_description">${String(out.error_description || '').replace(/[<&]/g, '')}</pre>`);
  },
};

// ---------------------------------------------------------------- helpers
const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
function signJwt(payload, jwk, header = {}) {
  const h = { alg: 'RS256', kid: jwk.kid, ...header };
  const input = `${b64u(h)}.${b64u(payload)}`;
  const sig = cryptoSign('sha256', Buffer.from(input), createPrivateKey({ key: jwk, format: 'jwk' }));
  return `${input}.${sig.toString('base64url')}`;
}
function keyFor(kid) {
  if (!kid) return signingKeys[0];
  if (kid === 'unpublished') return newRsaKey();
  const k = [...signingKeys, ...extraKeys].find((x) => x.kid === kid);
  if (!k) throw Object.assign(new Error(`unknown kid ${kid}`), { status: 400 });
  return k;
}
function merge(base, over = {}) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) { if (v === null) delete out[k]; else out[k] = v; }
  return out;
}

let provider;
let issuer;
function reloadKeys() {
  initializeKeystore.call(provider, { keys: signingKeys });
  instance(provider).jwksResponse.keys.push(...extraKeys.map(publicPart));
}

let tamper = null; // {claims, kid, count}
let outage = false;

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const s = Buffer.concat(chunks).toString('utf8');
  return s ? JSON.parse(s) : {};
}

async function testRoute(req, res) {
  const send = (status, obj) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(obj));
  };
  try {
    const url = new URL(req.url, issuer);
    const body = req.method === 'POST' ? await readJson(req) : {};
    const route = `${req.method} ${url.pathname}`;
    const now = Math.floor(Date.now() / 1000);
    switch (route) {
      case 'GET /test/health':
        return send(200, { ok: true });
      case 'GET /test/keys':
        return send(200, { signing_kid: signingKeys[0].kid, published: instance(provider).jwksResponse.keys });
      case 'POST /test/rotate-keys': {
        const previous = signingKeys.map((k) => k.kid);
        signingKeys = [newRsaKey({ use: 'sig', alg: 'RS256' }), ...signingKeys];
        reloadKeys();
        return send(200, { signing_kid: signingKeys[0].kid, previous });
      }
      case 'POST /test/drop-old-keys': {
        const dropped = signingKeys.slice(1).map((k) => k.kid);
        signingKeys = signingKeys.slice(0, 1);
        reloadKeys();
        return send(200, { signing_kid: signingKeys[0].kid, dropped });
      }
      case 'POST /test/add-key': {
        const extra = {};
        const use = 'use' in body ? body.use : 'enc';
        if (use !== null) extra.use = use;
        if (body.key_ops) extra.key_ops = body.key_ops;
        if (body.alg !== undefined) extra.alg = body.alg; else extra.alg = 'RS256';
        const k = newRsaKey(extra);
        extraKeys.push(k);
        reloadKeys();
        return send(200, { kid: k.kid, jwk: publicPart(k) });
      }
      case 'POST /test/remove-extra-keys':
        extraKeys = [];
        reloadKeys();
        return send(200, { ok: true });
      case 'POST /test/mint': {
        const type = body.type || 'access';
        if (!body.sub && !(body.claims && 'sub' in body.claims)) return send(400, { error: 'sub required' });
        const clientId = body.client_id || CLIENT_ID;
        const ttl = Number(body.ttl ?? (type === 'id' ? ID_TTL : AT_TTL));
        const u = USERS[body.sub] || {};
        let claims;
        let header;
        if (type === 'id') {
          claims = { sub: body.sub, aud: body.aud ?? clientId, iss: issuer, iat: now, exp: now + ttl, auth_time: now };
          if (body.nonce !== undefined) claims.nonce = body.nonce;
          for (const k of ['email', 'name', 'voperson_id', 'roles']) if (u[k] !== undefined) claims[k] = u[k];
          if (u.email !== undefined) claims.email_verified = u.email_verified ?? true;
          header = {};
        } else {
          claims = {
            jti: randomUUID(), sub: body.sub, iat: now, exp: now + ttl, client_id: clientId, iss: issuer,
            aud: body.aud ?? API_AUDIENCE, scope: body.scope ?? 'openid email profile',
          };
          for (const k of AT_CLAIMS) if (u[k] !== undefined) claims[k] = u[k];
          header = { typ: 'at+jwt' };
        }
        claims = merge(claims, body.claims);
        const jwk = keyFor(body.kid);
        return send(200, { token: signJwt(claims, jwk, { ...header, ...(body.header || {}) }), kid: jwk.kid, claims });
      }
      case 'POST /test/tamper-next':
        tamper = { claims: body.claims || {}, kid: body.kid, count: Number(body.count ?? 1) };
        return send(200, { ok: true, ...tamper });
      case 'POST /test/outage':
        outage = !!body.enabled;
        return send(200, { outage });
      default:
        return send(404, { error: 'no such test route', route });
    }
  } catch (e) {
    return send(e.status || 500, { error: String(e.message || e) });
  }
}

// ---------------------------------------------------------------- start
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, HOST, resolve);
});
const { port } = server.address();
issuer = `http://${HOST}:${port}`;

provider = new Provider(issuer, configuration);

// Tamper with the ID token of token-endpoint responses (armed by /test/tamper-next).
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route === 'token' && tamper && tamper.count > 0 && ctx.body && ctx.body.id_token) {
    tamper.count -= 1;
    const [, payload] = ctx.body.id_token.split('.');
    const claims = merge(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')), tamper.claims);
    ctx.body = { ...ctx.body, id_token: signJwt(claims, keyFor(tamper.kid)) };
    if (tamper.count <= 0) tamper = null;
  }
  // devInteractions pages @import a Google font: strip it, tests must not leave loopback.
  if (ctx.oidc?.route === 'interaction' && typeof ctx.body === 'string') {
    ctx.body = ctx.body.replace(/@import url\([^)]*\);?/g, '');
  }
});

// devInteractions takes the login form's "login" value as the account id; map aliases (e.g. "zwsp").
const originalFinished = provider.interactionFinished.bind(provider);
provider.interactionFinished = (req, res, result, opts) => {
  if (result?.login?.accountId && LOGIN_ALIASES.has(result.login.accountId)) {
    // eslint-disable-next-line no-param-reassign
    result.login.accountId = LOGIN_ALIASES.get(result.login.accountId);
  }
  return originalFinished(req, res, result, opts);
};

const callback = provider.callback();
server.on('request', (req, res) => {
  if (LOG) console.error(`${req.method} ${req.url}`);
  if (req.url.startsWith('/test/')) { testRoute(req, res); return; }
  if (outage) { req.socket.destroy(); return; }
  callback(req, res);
});

const stop = () => { server.closeAllConnections?.(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

process.stdout.write(`READY ${issuer}\n`);
