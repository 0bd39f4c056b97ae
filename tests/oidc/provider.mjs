// A real OpenID Provider for the tests: oidc-provider (a certified implementation) on 127.0.0.1.
//
// Environment (set by tests/oidc/provider.py):
//   OIDC_PORT           the port; the issuer is http://127.0.0.1:<port>
//   OIDC_AUDIENCE       the resource DeskFleet is: access tokens are JWTs with this `aud`
//   OIDC_CLIENT_ID      the dashboard's public client (authorization code + PKCE, no secret)
//   OIDC_REDIRECT_URIS  JSON list of the dashboard's redirect (and post-logout) URIs
//   OIDC_KEYS_FILE      a JSON Web Key Set of private signing keys; the first signs
//   OIDC_ACCESS_TOKEN_TTL  seconds an access token lives (300 unless set)
//   OIDC_REFRESH_TOKENS "0": the dashboard gets no refresh token (its session ends with the token)
//
// People sign in with devInteractions' form (any login, any password): the login is the subject,
// and the account's e-mail, name and groups are what the test put under /test/accounts.
//
// For the tests only, under /test/ (never in a real provider):
//   PUT  /test/accounts/<sub>  {email, email_verified, name, groups}: claims of that subject
//   POST /test/keys            a new private key set: the provider now signs with its first key
//                              and publishes all of them (a key rotation)
//   POST /test/token           {sub, ttl?}: an access token the provider issues for that subject,
//                              as the token endpoint would after a sign-in
import http from 'node:http';
import fs from 'node:fs';

import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const audience = process.env.OIDC_AUDIENCE;
const clientId = process.env.OIDC_CLIENT_ID;
const redirectUris = JSON.parse(process.env.OIDC_REDIRECT_URIS || '[]');
const accessTokenTTL = Number(process.env.OIDC_ACCESS_TOKEN_TTL || 300);
const refreshTokens = process.env.OIDC_REFRESH_TOKENS !== '0';
const accounts = new Map();

function claimsOf(sub) {
  const account = accounts.get(sub) ?? {};
  return {
    sub,
    email: account.email ?? `${sub}@example.test`,
    email_verified: account.email_verified ?? true,
    name: account.name ?? sub,
    groups: account.groups ?? [],
  };
}

const resourceServer = {
  audience,
  scope: 'openid profile email',
  accessTokenFormat: 'jwt',
  accessTokenTTL,
  jwt: { sign: { alg: 'RS256' } },
};

function build(jwks) {
  const provider = new Provider(issuer, {
    jwks,
    clients: [
      {
        client_id: clientId,
        token_endpoint_auth_method: 'none',
        application_type: 'web',
        grant_types: [
          'authorization_code',
          'refresh_token',
          'urn:ietf:params:oauth:grant-type:device_code', // examples/oidc_token.py
        ],
        response_types: ['code'],
        redirect_uris: redirectUris,
        post_logout_redirect_uris: redirectUris,
      },
    ],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    cookies: { keys: ['deskfleet-test-provider'] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // The dashboard does not name the resource: every token is for DeskFleet.
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          if (indicator !== audience) throw new Provider.errors.InvalidTarget();
          return resourceServer;
        },
      },
    },
    issueRefreshToken: (ctx, client) => refreshTokens && client.grantTypeAllowed('refresh_token'),
    // The dashboard is first-party: no consent screen.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile email offline_access');
      grant.addResourceScope(audience, resourceServer.scope);
      await grant.save();
      return grant;
    },
    findAccount: (ctx, sub) => ({
      accountId: sub,
      claims: () => claimsOf(sub),
    }),
    // What DeskFleet reads is in the access token itself.
    extraTokenClaims: (ctx, token) => {
      if (!token.accountId) return undefined;
      const { email, email_verified: verified, name, groups } = claimsOf(token.accountId);
      return { email, email_verified: verified, name, groups };
    },
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  provider.on('end_session.error', (ctx, error) => console.error('end_session', error, error.cause));
  return provider;
}

let provider = build(JSON.parse(fs.readFileSync(process.env.OIDC_KEYS_FILE, 'utf8')));
let handle = provider.callback();

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : {};
}

function reply(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function test(req, res) {
  const url = new URL(req.url, issuer);
  if (req.method === 'PUT' && url.pathname.startsWith('/test/accounts/')) {
    const sub = decodeURIComponent(url.pathname.slice('/test/accounts/'.length));
    accounts.set(sub, await body(req));
    return reply(res, 200, claimsOf(sub));
  }
  if (req.method === 'POST' && url.pathname === '/test/keys') {
    provider = build(await body(req));
    handle = provider.callback();
    return reply(res, 200, { ok: true });
  }
  if (req.method === 'POST' && url.pathname === '/test/token') {
    const { sub, ttl } = await body(req);
    const client = await provider.Client.find(clientId);
    const token = new provider.AccessToken({
      accountId: sub,
      client,
      gty: 'authorization_code',
      scope: resourceServer.scope,
      resourceServer: { ...resourceServer, identifier: () => audience },
      ...(ttl ? { expiresIn: ttl } : {}),
    });
    return reply(res, 200, { access_token: await token.save() });
  }
  return reply(res, 404, { error: 'not found' });
}

http
  .createServer((req, res) => {
    if (req.url.startsWith('/test/')) {
      test(req, res).catch((error) => reply(res, 500, { error: String(error) }));
    } else {
      handle(req, res);
    }
  })
  .listen(port, '127.0.0.1', () => console.log(`oidc-provider ready at ${issuer}`));
