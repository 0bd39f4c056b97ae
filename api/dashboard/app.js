// The DeskFleet dashboard: sign in, route between views, keep the shell (nav, live state) current.
import { closeLive, onLiveState, renewLive, request, subscribe, token } from "./api.js";
import { fill, h } from "./dom.js";
import { groupsView, machinesView } from "./lists.js";
import { groupView, machineView } from "./detail.js";
import { recommendationsView } from "./recommendations.js";
import * as openid from "./openid.js";
import { runView, runsView } from "./runs.js";
import { trendsView } from "./trends.js";
import { settingsView } from "./manage.js";
import { connectionsView } from "./connections.js";
import * as ops from "./operations.js";
import { session, showError } from "./ui.js";

const main = document.getElementById("main");
const header = document.querySelector("header.top");

// --- sign in -------------------------------------------------------------------------------

// Said on the sign-in page once: why the last session ended, or why a sign-in failed.
let notice = "";

function signInView() {
  header.hidden = true;
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-help",
  });
  const problem = h("p", { class: "error", id: "sign-in-error", role: "alert" }, notice);
  notice = "";
  const form = h(
    "form",
    {
      class: "card sign-in",
      onsubmit: async (event) => {
        event.preventDefault();
        problem.textContent = "";
        const candidate = input.value.trim();
        try {
          await loadSession(candidate);
        } catch (error) {
          problem.textContent =
            error.code === "UNAUTHENTICATED" || error.code === "USER_DEACTIVATED"
              ? "This token was not accepted. Check it and try again."
              : error.message;
          input.focus();
          return;
        }
        await openid.forget(); // a pasted token replaces a provider's session in this tab
        token.set(candidate);
        startShell();
        window.location.hash = "#/machines";
        route();
      },
    },
    h("h1", { tabindex: "-1" }, "Sign in to DeskFleet"),
    h("label", { for: "token" }, "API token"),
    input,
    h(
      "p",
      { id: "token-help", class: "help" },
      "A user token (dfu_…). The first run prints an administrator token; ",
      h("code", {}, "deskfleet admin token"),
      " mints another. It is kept in this browser tab only.",
    ),
    problem,
    h("button", { type: "submit" }, "Sign in"),
  );
  fill(main, form);
  input.focus();
  let left = false;
  openid.configuration().then((settings) => {
    if (left || !settings.enabled) return;
    // R44: the organisation's provider first; the API token stays for scripts' owners.
    const provider = h(
      "div",
      { class: "provider" },
      h(
        "button",
        {
          type: "button",
          id: "sign-in-provider",
          onclick: () => openid.begin().catch((error) => (problem.textContent = error.message)),
        },
        `Sign in with ${settings.providerName}`,
      ),
      h("p", { class: "help" }, "Or paste an API token:"),
    );
    form.insertBefore(provider, form.querySelector("label"));
  });
  return () => {
    left = true;
  };
}

async function loadSession(bearer) {
  const data = await request(ops.SIGN_IN, {}, bearer);
  session.me = data.me;
  session.environments = data.environments;
}

async function signOut() {
  if (!session.me) return; // several subscriptions may report a refused token at once
  const logout = await openid.forget();
  endSession();
  // RP-initiated logout: the provider ends its own session and sends the browser back here.
  if (logout) window.location.assign(logout);
}

function endSession() {
  token.clear();
  session.me = null;
  stopShell();
  closeLive();
  // A new hash routes by itself (hashchange): routing here too would show the page twice and
  // lose the notice the first one showed.
  if (window.location.hash === "#/signin") route();
  else window.location.hash = "#/signin";
}

/** The token was refused, or the provider's session ran out and could not be renewed. */
function sessionEnded() {
  if (!session.me) return;
  if (openid.signedInWithProvider()) {
    notice = "Your session has expired. Sign in again.";
    openid.forget(); // without the provider's sign-out: its own session may well go on
  }
  endSession();
}

function keepProviderSession() {
  openid.keepAlive(renewLive, sessionEnded);
}

// --- the shell: who, live state, the recommendations badge --------------------------------

let shellStops = [];

function startShell() {
  stopShell();
  header.hidden = false;
  fill(document.getElementById("who"), session.me.user.displayName);
  // Environment settings: only for who administers an environment.
  document.getElementById("settings-link").hidden = !(
    session.me.user.isAdmin || session.me.roles.some((r) => r.role === "ENVIRONMENT_ADMIN")
  );
  const live = document.getElementById("live-state");
  shellStops.push(
    onLiveState((state) => {
      live.dataset.state = state;
      live.textContent =
        { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…" }[state] ?? "";
    }),
  );
  const badge = document.getElementById("recommendation-count");
  const open = new Map();
  shellStops.push(
    subscribe(
      ops.WATCH_RECOMMENDATIONS,
      {},
      ({ sessionRecommendations: update }) => {
        if (update.snapshot) open.clear();
        for (const id of update.removedIds) open.delete(id);
        for (const rec of update.recommendations) {
          if (rec.status === "OPEN") open.set(rec.id, rec);
          else open.delete(rec.id);
        }
        badge.hidden = open.size === 0;
        badge.textContent = open.size ? `${open.size} open` : "";
      },
      showError,
    ),
  );
}

function stopShell() {
  for (const stop of shellStops) stop();
  shellStops = [];
}

document.getElementById("sign-out").addEventListener("click", signOut);
session.onUnauthenticated = sessionEnded;

// --- routing -------------------------------------------------------------------------------

const ROUTES = [
  [/^#\/machines$/, () => machinesView(main), "machines"],
  [/^#\/machines\/([^/]+)$/, (id) => machineView(main, decodeURIComponent(id)), "machines"],
  [/^#\/groups$/, () => groupsView(main), "groups"],
  [/^#\/groups\/([^/]+)$/, (id) => groupView(main, decodeURIComponent(id)), "groups"],
  [/^#\/recommendations$/, () => recommendationsView(main), "recommendations"],
  [/^#\/runs$/, () => runsView(main), "runs"],
  [/^#\/runs\/([^/]+)$/, (id) => runView(main, decodeURIComponent(id)), "runs"],
  [/^#\/trends$/, () => trendsView(main), "trends"],
  [/^#\/settings$/, () => settingsView(main), "settings"],
  [/^#\/connections$/, () => connectionsView(main), "connections"],
];

let leaveView = () => {};

function route() {
  leaveView();
  leaveView = () => {};
  if (!session.me) {
    leaveView = signInView();
    return;
  }
  const hash = window.location.hash || "#/machines";
  for (const [pattern, view, section] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    fill(main);
    leaveView = view(...match.slice(1)) ?? (() => {});
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    document.title = `${heading?.textContent ?? "DeskFleet"} · DeskFleet`;
    return;
  }
  window.location.replace("#/machines");
}

window.addEventListener("hashchange", route);

async function start() {
  try {
    const next = await openid.complete(); // back from the provider's sign-in page?
    if (next) window.location.hash = next;
  } catch (error) {
    notice = error.message;
  }
  const saved = token.get();
  if (saved) {
    try {
      await loadSession(saved);
      startShell();
      keepProviderSession();
    } catch (error) {
      if (openid.signedInWithProvider() && error.code) notice = refusalText(error);
      token.clear();
      await openid.forget();
    }
  }
  route();
}

function refusalText(error) {
  if (error.code === "USER_DEACTIVATED") return "Your DeskFleet user is deactivated.";
  return error.message;
}

start();
