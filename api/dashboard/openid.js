// R44: "Sign in with <provider>": the organisation's OpenID Connect provider, for a public client
// (no secret): authorization code with PKCE (S256), the dashboard's own address as redirect URI.
// Tokens live in this tab's sessionStorage, like a pasted API token: the access token is the
// bearer every request and the websocket use (api.js), renewed with the refresh token when the
// provider gave one, else the session ends with a "session expired" notice.
import { token } from "./api.js";

const PENDING_KEY = "deskfleet.oidc.pending"; // {state, verifier, returnTo} while at the provider
const TOKENS_KEY = "deskfleet.oidc"; // {refreshToken, idToken, expiresAt}
const RENEW_BEFORE_MS = 60_000; // renew this long before the access token ends

let configured = null;

/** The server's sign-in settings: `{enabled: false}` unless DESKFLEET_OIDC_ISSUER is set. */
export async function configuration() {
  if (!configured) {
    configured = fetch(new URL("/sign-in/configuration", window.location.href))
      .then((response) => (response.ok ? response.json() : { enabled: false }))
      .catch(() => ({ enabled: false }));
  }
  return configured;
}

function redirectUri() {
  return new URL(window.location.pathname, window.location.origin).href;
}

function randomText(bytes = 32) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return base64url(values);
}

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** Off to the provider's sign-in page; it sends the browser back here with a code. */
export async function begin(returnTo = "#/machines") {
  const settings = await configuration();
  const state = randomText(16);
  const verifier = randomText(32);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ state, verifier, returnTo }));
  const url = new URL(settings.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: settings.clientId,
    redirect_uri: redirectUri(),
    scope: settings.scopes,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.href);
}

/** A failed sign-in with the provider, said in words. */
export class SignInFailed extends Error {}

async function tokenRequest(form) {
  const settings = await configuration();
  let response;
  try {
    response = await fetch(settings.tokenEndpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: new URLSearchParams({ client_id: settings.clientId, ...form }).toString(),
    });
  } catch {
    throw new SignInFailed(`${settings.providerName} cannot be reached. Try again.`);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) {
    throw new SignInFailed(
      `${settings.providerName} did not sign you in: ${body.error_description || body.error || `HTTP ${response.status}`}.`,
    );
  }
  keep(body);
  return body.access_token;
}

function keep(body) {
  const previous = kept();
  token.set(body.access_token);
  sessionStorage.setItem(
    TOKENS_KEY,
    JSON.stringify({
      refreshToken: body.refresh_token ?? previous?.refreshToken ?? null,
      idToken: body.id_token ?? previous?.idToken ?? null,
      expiresAt: Date.now() + (Number(body.expires_in) || 300) * 1000,
    }),
  );
}

function kept() {
  try {
    return JSON.parse(sessionStorage.getItem(TOKENS_KEY) ?? "null");
  } catch {
    return null;
  }
}

/** Whether the tab's bearer came from the provider (not a pasted API token). */
export function signedInWithProvider() {
  return kept() !== null;
}

/**
 * Back from the provider: the code in the address becomes tokens. Returns the hash to show
 * next, or null when the address carries no answer from the provider.
 */
export async function complete() {
  const params = new URLSearchParams(window.location.search);
  if (!params.has("state") || !(params.has("code") || params.has("error"))) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? "null");
  sessionStorage.removeItem(PENDING_KEY);
  // The code is single-use and the address would keep it: take it out of the history.
  window.history.replaceState(null, "", redirectUri() + "#/signin");
  if (!pending || pending.state !== params.get("state")) {
    throw new SignInFailed("The sign-in did not start in this tab. Sign in again.");
  }
  if (params.has("error")) {
    throw new SignInFailed(
      `The sign-in was not completed: ${params.get("error_description") || params.get("error")}.`,
    );
  }
  await tokenRequest({
    grant_type: "authorization_code",
    code: params.get("code"),
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  return pending.returnTo || "#/machines";
}

let renewal = null;

/**
 * Keep the session going: renew the access token before it ends (`onRenewed()` then), or
 * call `onExpired()` when it cannot be renewed.
 */
export function keepAlive(onRenewed, onExpired) {
  clearTimeout(renewal);
  const tokens = kept();
  if (!tokens) return;
  const left = tokens.expiresAt - Date.now();
  // A short-lived token is renewed at three quarters of its life.
  const wait = Math.max(0, left > 4 * RENEW_BEFORE_MS ? left - RENEW_BEFORE_MS : left * 0.75);
  renewal = setTimeout(async () => {
    const current = kept();
    if (!current) return;
    if (current.refreshToken) {
      try {
        await tokenRequest({ grant_type: "refresh_token", refresh_token: current.refreshToken });
        onRenewed();
        keepAlive(onRenewed, onExpired);
        return;
      } catch {
        // fall through: the session has ended
      }
    }
    renewal = setTimeout(onExpired, Math.max(0, current.expiresAt - Date.now()));
  }, wait);
}

/**
 * Forget the provider's tokens. Returns the provider's sign-out address (RP-initiated logout)
 * to go to, or null when the provider has none or the tab did not sign in with it.
 */
export async function forget() {
  clearTimeout(renewal);
  const tokens = kept();
  sessionStorage.removeItem(TOKENS_KEY);
  if (!tokens) return null;
  const settings = await configuration();
  if (!settings.enabled || !settings.endSessionEndpoint) return null;
  const url = new URL(settings.endSessionEndpoint);
  url.search = new URLSearchParams({
    client_id: settings.clientId,
    post_logout_redirect_uri: redirectUri(),
    ...(tokens.idToken ? { id_token_hint: tokens.idToken } : {}),
  }).toString();
  return url.href;
}
