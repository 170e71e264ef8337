// Smoke test and executable documentation of the browser-less HTTP steps against provider.mjs.
// Uses only Node built-ins (fetch, crypto, child_process). Run: `node smoke.mjs` (exit 0 = all checks passed).
//
// The steps a Rust test repeats without a browser (the "user agent" part; the server does discovery, the token
// exchange and the ID-token check itself):
//   1. GET  {authorization_endpoint}?client_id&redirect_uri&response_type=code&scope&state&nonce
//           &code_challenge=<b64url(sha256(verifier))>&code_challenge_method=S256          -> 303 /interaction/<uid>
//   2. GET  /interaction/<uid>  (cookies from 1)  -> login page: <form action="/interaction/<uid>" method="post">
//           fields: prompt=login (hidden), login=<account id or alias>, password=<anything, required>
//   3. POST /interaction/<uid>  prompt=login&login=alice&password=x                       -> 303 /auth/<uid>
//   4. GET  /auth/<uid>                                                                    -> 303 /interaction/<uid2>
//   5. GET  /interaction/<uid2> -> consent page: same form, field prompt=consent (hidden), button "Continue"
//   6. POST /interaction/<uid2> prompt=consent                                             -> 303 /auth/<uid2>
//   7. GET  /auth/<uid2>        -> 303 {redirect_uri}?code=...&state=...&iss=...   (never followed here; in the Rust
//           test this is the request to the server's /ui/oidc/callback)
//   8. POST {token_endpoint} (Basic client auth) grant_type=authorization_code&code&redirect_uri&code_verifier
//           -> {access_token (JWT for the API), id_token, token_type: "Bearer", expires_in, scope}
//   Later sign-ins in the same cookie jar skip 2-6 (provider session and grant exist): 1 -> 303 /auth/<uid> -> 303
//   redirect_uri. Add prompt=login to the authorization request to force the login form again.
//   Sign-out: GET {end_session_endpoint}?id_token_hint&post_logout_redirect_uri&state -> page with
//   <form id="op.logoutForm" action="/session/end/confirm"> (hidden xsrf) and button name=logout value=yes;
//   POST /session/end/confirm xsrf=...&logout=yes -> 303 {post_logout_redirect_uri}?state=...
import { spawn } from 'node:child_process';
import { createHash, randomBytes, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REDIRECT = 'http://127.0.0.1:9/ui/oidc/callback'; // nothing listens there: redirects are read, never followed
const POST_LOGOUT = 'http://127.0.0.1:9/ui/signin';
let failures = 0;
let passed = 0;
const check = (cond, what) => { console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`); if (cond) passed += 1; else failures += 1; };

// ------------------------------------------------------------------ start the provider
const child = spawn(process.execPath, [fileURLToPath(new URL('./provider.mjs', import.meta.url))], {
  env: {
    ...process.env,
    OIDC_PORT: '0',
    OIDC_REDIRECT_URIS: REDIRECT,
    OIDC_POST_LOGOUT_REDIRECT_URIS: POST_LOGOUT,
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
process.on('exit', () => { if (child.exitCode === null) child.kill('SIGTERM'); }); // never leave it running
process.on('uncaughtException', (e) => { console.error(e); process.exit(2); });
process.on('unhandledRejection', (e) => { console.error(e); process.exit(2); });
child.stderr.on('data', (d) => { if (process.env.SMOKE_VERBOSE) process.stderr.write(d); });
const issuer = await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('provider not ready in 20s')), 20000);
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = /^READY (\S+)$/.exec(line);
    if (m) { clearTimeout(t); resolve(m[1]); }
  });
  child.on('exit', (c) => reject(new Error(`provider exited ${c}`)));
});
console.log(`provider ready: ${issuer}`);

// ------------------------------------------------------------------ tiny cookie jar + fetch without redirects
class Jar {
  cookies = new Map(); // name|path -> {name, value, path}

  store(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [nv, ...attrs] = sc.split(';').map((s) => s.trim());
      const i = nv.indexOf('=');
      const name = nv.slice(0, i);
      const value = nv.slice(i + 1);
      let path = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'expires' && Date.parse(v) < Date.now()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name}|${path}`;
      if (expired) this.cookies.delete(key); else this.cookies.set(key, { name, value, path });
    }
  }

  header(url) {
    const p = new URL(url).pathname;
    return [...this.cookies.values()].filter((c) => p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

async function http(jar, method, url, { form, headers = {} } = {}) {
  const h = { ...headers };
  const cookie = jar?.header(url);
  if (cookie) h.cookie = cookie;
  let body;
  if (form) { h['content-type'] = 'application/x-www-form-urlencoded'; body = new URLSearchParams(form).toString(); }
  const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  jar?.store(res);
  const text = await res.text();
  return { status: res.status, location: res.headers.get('location'), text, headers: res.headers };
}

const b64u = (b) => Buffer.from(b).toString('base64url');
const decode = (jwt) => {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
};
async function verifyJwt(jwt, jwksUri) {
  const { header } = decode(jwt);
  const { keys } = await (await fetch(jwksUri)).json();
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) return { ok: false, why: `kid ${header.kid} not in JWKS` };
  const [h, p, s] = jwt.split('.');
  const ok = cryptoVerify('sha256', Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  return { ok, kid: header.kid, use: jwk.use };
}

// ------------------------------------------------------------------ discovery
const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
check(meta.issuer === issuer, `discovery issuer = ${meta.issuer}`);
check(JSON.stringify(meta.code_challenge_methods_supported) === '["S256"]', 'PKCE methods: S256 only');
check(!!meta.end_session_endpoint, `end_session_endpoint = ${meta.end_session_endpoint}`);

// ------------------------------------------------------------------ the user agent part of the code flow
function formOf(html) {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
  const hidden = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  return { action: action && new URL(action.replace(/&amp;/g, '&'), issuer).href, hidden };
}

/** Runs the browser side; returns {code, state, iss, verifier, nonce, pages} or {error}. */
async function authorize(jar, { clientId = 'roleledger', login = 'alice', extra = {} } = {}) {
  const verifier = b64u(randomBytes(32));
  const state = b64u(randomBytes(16));
  const nonce = b64u(randomBytes(16));
  const q = new URLSearchParams({
    client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid email profile',
    state, nonce, code_challenge: b64u(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
    ...extra,
  });
  let url = `${meta.authorization_endpoint}?${q}`;
  const pages = [];
  for (let i = 0; i < 12; i += 1) {
    const r = await http(jar, 'GET', url);
    if (r.status === 303 || r.status === 302) {
      const next = new URL(r.location, url).href;
      if (next.startsWith(REDIRECT)) {
        const p = new URL(next).searchParams;
        return { code: p.get('code'), state: p.get('state'), iss: p.get('iss'), error: p.get('error'), sentState: state, verifier, nonce, pages };
      }
      url = next;
      continue;
    }
    if (r.status !== 200) return { error: `HTTP ${r.status} at ${url}: ${r.text.slice(0, 200)}`, pages };
    const { action, hidden } = formOf(r.text);
    pages.push(hidden.prompt);
    const form = hidden.prompt === 'login' ? { ...hidden, login, password: 'anything' } : hidden;
    const post = await http(jar, 'POST', action, { form });
    url = new URL(post.location, action).href;
  }
  return { error: 'too many steps', pages };
}

async function exchange(code, verifier, { clientId = 'roleledger', secret = 'roleledger-secret' } = {}) {
  const r = await http(null, 'POST', meta.token_endpoint, {
    headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}` },
    form: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
  });
  return { status: r.status, body: JSON.parse(r.text) };
}

// ------------------------------------------------------------------ 1st sign-in
const jar = new Jar();
const a1 = await authorize(jar);
check(!!a1.code, `authorization code received after pages [${a1.pages}] ${a1.error || ''}`);
check(a1.state === a1.sentState, 'state echoed unchanged');
check(a1.iss === issuer, `iss parameter on the redirect (RFC 9207) = ${a1.iss}`);
const t1 = await exchange(a1.code, a1.verifier);
check(t1.status === 200, `token endpoint 200 (token_type ${t1.body.token_type}, expires_in ${t1.body.expires_in}, scope "${t1.body.scope}")`);
const id1 = decode(t1.body.id_token);
const at1 = decode(t1.body.access_token);
console.log('ID token header:', JSON.stringify(id1.header));
console.log('ID token claims:', JSON.stringify(id1.payload, null, 1));
console.log('access token header:', JSON.stringify(at1.header));
console.log('access token claims:', JSON.stringify(at1.payload, null, 1));
check(id1.payload.nonce === a1.nonce && id1.payload.aud === 'roleledger' && id1.payload.iss === issuer, 'ID token nonce, aud, iss');
check(['iss', 'aud', 'sub', 'exp'].every((k) => k in at1.payload) && at1.payload.aud === 'roleledger', 'access token has iss, aud, sub, exp');
const v1 = await verifyJwt(t1.body.id_token, meta.jwks_uri);
const v2 = await verifyJwt(t1.body.access_token, meta.jwks_uri);
check(v1.ok, `ID token signature verifies with JWKS key ${v1.kid}`);
check(v2.ok, `access token signature verifies with JWKS key ${v2.kid}`);

// wrong verifier / replayed code
const replay = await exchange(a1.code, a1.verifier);
check(replay.status === 400 && replay.body.error === 'invalid_grant', `replayed code refused: ${replay.status} ${replay.body.error} (${replay.body.error_description})`);
const a1b = await authorize(jar);
const badPkce = await exchange(a1b.code, b64u(randomBytes(32)));
check(badPkce.status === 400 && badPkce.body.error === 'invalid_grant', `wrong code_verifier refused: ${badPkce.body.error} (${badPkce.body.error_description})`);
const noPkce = await http(jar, 'GET', `${meta.authorization_endpoint}?${new URLSearchParams({ client_id: 'roleledger', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', state: 's' })}`);
check(noPkce.status === 303 && /error=invalid_request/.test(noPkce.location), `authorization request without PKCE refused: ${noPkce.location}`);

const ui = await http(null, 'GET', meta.userinfo_endpoint, { headers: { authorization: `Bearer ${t1.body.access_token}` } });
console.log(`userinfo with the API access token: ${ui.status} ${ui.text.slice(0, 160)}`);

// ------------------------------------------------------------------ key rotation
const kidsBefore = (await (await fetch(meta.jwks_uri)).json()).keys.map((k) => k.kid);
const rot = await (await fetch(`${issuer}/test/rotate-keys`, { method: 'POST' })).json();
const kidsAfter = (await (await fetch(meta.jwks_uri)).json()).keys.map((k) => k.kid);
console.log(`JWKS kids before rotate: ${kidsBefore}; after: ${kidsAfter}`);
check(kidsAfter.length === 2 && kidsAfter[0] === rot.signing_kid && kidsAfter.includes(kidsBefore[0]), 'rotate: new kid published, old kept');
const a2 = await authorize(jar); // SSO: no login/consent pages this time
check(a2.code && a2.pages.length === 0, `second sign-in without login/consent pages (pages [${a2.pages}])`);
const t2 = await exchange(a2.code, a2.verifier);
const v3 = await verifyJwt(t2.body.id_token, meta.jwks_uri);
const v4 = await verifyJwt(t2.body.access_token, meta.jwks_uri);
check(v3.ok && v3.kid === rot.signing_kid, `new ID token signed with new kid ${v3.kid}`);
check(v4.ok && v4.kid === rot.signing_kid, `new access token signed with new kid ${v4.kid}`);
check((await verifyJwt(t1.body.access_token, meta.jwks_uri)).ok, 'old access token still verifies (old key still in JWKS)');
await fetch(`${issuer}/test/drop-old-keys`, { method: 'POST' });
const kidsDropped = (await (await fetch(meta.jwks_uri)).json()).keys.map((k) => k.kid);
check(kidsDropped.length === 1 && kidsDropped[0] === rot.signing_kid, `drop-old-keys: JWKS now ${kidsDropped}`);
check(!(await verifyJwt(t1.body.access_token, meta.jwks_uri)).ok, 'old access token no longer verifies');

// ------------------------------------------------------------------ test-only minting and unusable keys
const enc = await (await fetch(`${issuer}/test/add-key`, { method: 'POST', body: JSON.stringify({ use: 'enc' }) })).json();
const minted = await (await fetch(`${issuer}/test/mint`, { method: 'POST', body: JSON.stringify({ type: 'access', sub: 'alice', kid: enc.kid }) })).json();
const vEnc = await verifyJwt(minted.token, meta.jwks_uri);
console.log(`added JWKS key ${enc.kid} use=${enc.jwk.use}; token minted with it: kid ${vEnc.kid}, JWKS use "${vEnc.use}" (a correct server refuses it)`);
check(vEnc.use === 'enc', 'token signed by a use=enc key (for the "never used" test)');
const m2 = await (await fetch(`${issuer}/test/mint`, { method: 'POST', body: JSON.stringify({ sub: 'bob', claims: { aud: null, iat: 1 } }) })).json();
check(!('aud' in m2.claims) && m2.claims.iat === 1 && (await verifyJwt(m2.token, meta.jwks_uri)).ok, 'mint: claim removed (aud) and overridden (iat), signed with current key');
const mId = await (await fetch(`${issuer}/test/mint`, { method: 'POST', body: JSON.stringify({ type: 'id', sub: 'alice', client_id: 'other-client', nonce: 'n' }) })).json();
check(mId.claims.aud === 'other-client', 'mint: ID token for another client');

// ------------------------------------------------------------------ tampered ID token from the token endpoint
await fetch(`${issuer}/test/tamper-next`, { method: 'POST', body: JSON.stringify({ claims: { aud: 'other-client' } }) });
const a3 = await authorize(jar);
const t3 = await exchange(a3.code, a3.verifier);
check(decode(t3.body.id_token).payload.aud === 'other-client' && (await verifyJwt(t3.body.id_token, meta.jwks_uri)).ok, 'tamper-next: token endpoint returned a validly signed ID token with aud other-client');
const t3b = await exchange((await authorize(jar)).code, a3.verifier);
check(t3b.status === 400 || decode(t3b.body.id_token).payload.aud === 'roleledger', 'tamper is one-shot');

// ------------------------------------------------------------------ a real code for the other client
const jarOther = new Jar();
const a4 = await authorize(jarOther, { clientId: 'other-client' });
const t4 = await exchange(a4.code, a4.verifier, { clientId: 'other-client', secret: 'other-secret' });
check(decode(t4.body.id_token).payload.aud === 'other-client', 'other-client flow: ID token aud other-client');
const a5 = await authorize(jarOther, { clientId: 'other-client' });
const t5 = await exchange(a5.code, a5.verifier); // redeemed by roleledger: refused
check(t5.status === 400 && t5.body.error === 'invalid_grant', `other client's code redeemed by roleledger: ${t5.body.error} (${t5.body.error_description})`);

// ------------------------------------------------------------------ U+200B user
const jarZ = new Jar();
const az = await authorize(jarZ, { login: 'zwsp' });
const tz = await exchange(az.code, az.verifier);
const subZ = decode(tz.body.id_token).payload.sub;
check(subZ === 'ev\u200bil' && decode(tz.body.access_token).payload.sub === subZ, `login "zwsp" -> sub ${JSON.stringify(subZ).replace('\u200b', '\\u200b')} in ID and access token`);

// ------------------------------------------------------------------ RP-initiated logout
const endUrl = `${meta.end_session_endpoint}?${new URLSearchParams({ id_token_hint: t2.body.id_token, post_logout_redirect_uri: POST_LOGOUT, state: 'bye' })}`;
const endPage = await http(jar, 'GET', endUrl);
const lf = formOf(endPage.text);
check(endPage.status === 200 && !!lf.hidden.xsrf, `end_session page with form ${lf.action}`);
const conf = await http(jar, 'POST', lf.action, { form: { xsrf: lf.hidden.xsrf, logout: 'yes' } });
check(conf.status === 303 && conf.location === `${POST_LOGOUT}?state=bye`, `logout confirm -> ${conf.status} ${conf.location}`);
const a6 = await authorize(jar);
check(a6.pages[0] === 'login', `after logout the login page is shown again (pages [${a6.pages}])`);

// ------------------------------------------------------------------ outage + shutdown
await fetch(`${issuer}/test/outage`, { method: 'POST', body: JSON.stringify({ enabled: true }) });
const down = await fetch(meta.jwks_uri).then(() => 'answered', (e) => `error: ${e.cause?.code || e.message}`);
check(down.startsWith('error'), `outage: jwks_uri ${down}`);
await fetch(`${issuer}/test/outage`, { method: 'POST', body: JSON.stringify({ enabled: false }) });
check((await fetch(meta.jwks_uri)).ok, 'outage off: jwks_uri answers again');

const t0 = Date.now();
child.kill('SIGTERM');
const code = await new Promise((r) => child.on('exit', (c, s) => r(c ?? s)));
check(code === 0, `SIGTERM: provider exited (${code}) in ${Date.now() - t0} ms`);
console.log(`${failures === 0 ? 'SMOKE OK' : `SMOKE FAILED (${failures})`}`);
console.log(`smoke: ${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
