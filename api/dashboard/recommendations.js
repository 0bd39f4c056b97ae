// "Desktop flows not running" (R31-R34): live from the sessionRecommendations subscription.
import { mutate, subscribe } from "./api.js";
import { duration, fill, h, timeAgo } from "./dom.js";
import * as ops from "./operations.js";
import { announce, session, showError } from "./ui.js";

const OUTCOMES = {
  BLOCKED: "Blocked",
  STARTED: "Started",
  ENDED: "Ended",
  UNBLOCKED: "No longer blocked",
  FAILED_SESSION_EXISTS: "Failed: the session was still there when the window ended",
  WITHDRAWN: "Withdrawn",
};

export function recommendationsView(main) {
  let stopped = false;
  const shown = new Map(); // id -> recommendation (resolved ones stay until you leave)
  const unselected = new Set(); // run ids the user unticked
  const list = h("div", { class: "stack", id: "recommendations" });
  const count = h("p", { class: "count", "aria-live": "polite" });

  function keep(rec) {
    rec.receivedAt = performance.now(); // the countdown runs on from the server's figure
    shown.set(rec.id, rec);
  }

  function put(rec) {
    keep(rec);
    render();
  }

  function blockedFor(rec, run) {
    const since = run.outcome === "BLOCKED" ? (performance.now() - rec.receivedAt) / 1000 : 0;
    return run.blockedSeconds + since;
  }

  function secondsLeft(rec) {
    return Math.max(0, rec.windowSecondsLeft - (performance.now() - rec.receivedAt) / 1000);
  }

  async function act(rec, button, document, variables, said) {
    button.disabled = true;
    try {
      const { recommendation } = await mutate(document, variables);
      put(recommendation);
      announce(said(recommendation));
    } catch (error) {
      showError(error);
      button.disabled = false;
    }
  }

  function card(rec) {
    const open = rec.status === "OPEN";
    const headingId = `rec-${rec.id}`;
    const blocked = rec.runs.filter((r) => r.outcome === "BLOCKED");
    const selected = () => blocked.map((r) => r.runId).filter((id) => !unselected.has(id));
    const disconnect = h(
      "button",
      {
        type: "button",
        class: "primary",
        disabled: !open || !blocked.length,
        onclick: (event) => {
          const runIds = selected();
          if (!runIds.length) {
            showError(new Error("Select at least one run to disconnect its user."));
            return;
          }
          act(rec, event.currentTarget, ops.DISCONNECT_USERS, { id: rec.id, runIds }, () =>
            `Disconnect requested for ${runIds.length} run${runIds.length === 1 ? "" : "s"}: the machines will sign the users out.`,
          );
        },
      },
      "Disconnect users",
    );
    const refresh = h(
      "button",
      {
        type: "button",
        class: "secondary",
        disabled: !open,
        onclick: (event) =>
          act(rec, event.currentTarget, ops.REFRESH_RECOMMENDATION, { id: rec.id }, (r) =>
            r.status === "RESOLVED"
              ? "Refreshed: no run is blocked any more."
              : `Refreshed: ${r.affectedRuns.length} run${r.affectedRuns.length === 1 ? "" : "s"} still blocked.`,
          ),
      },
      "Refresh",
    );
    return h(
      "article",
      { class: "card rec", "data-recommendation": rec.id, "data-status": rec.status, "aria-labelledby": headingId },
      h(
        "div",
        { class: "title-row" },
        h("h2", { id: headingId }, rec.title),
        h("span", { class: `tag ${open ? "warn" : "ok"}`, "data-status": rec.status }, open ? "Open" : "Resolved"),
      ),
      h(
        "p",
        {},
        "These unattended runs cannot start only because their user has a locked or disconnected ",
        "Windows session on the machine. Disconnect the users to let them start; runs still ",
        "blocked when the window ends fail with SESSION_EXISTS_FOR_USER.",
      ),
      h(
        "p",
        { class: "muted" },
        `${rec.environment?.name ?? "Environment"} · raised `,
        timeAgo(rec.raisedAt),
        open
          ? ` · window ends in ${duration(secondsLeft(rec))}`
          : rec.resolvedAt
            ? [" · resolved ", timeAgo(rec.resolvedAt)]
            : null,
      ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "grid" },
          h("caption", { class: "visually-hidden" }, `Runs listed by ${rec.title}`),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Select")),
              ["Flow", "Machine", "Windows user", "Session", "Blocked for", "State"].map((t) =>
                h("th", { scope: "col" }, t),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            rec.runs.map((r) => {
              const flow = r.flow?.name ?? "(deleted flow)";
              const checkId = `pick-${rec.id}-${r.runId}`;
              return h(
                "tr",
                { "data-run": r.runId, "data-outcome": r.outcome },
                h(
                  "td",
                  {},
                  r.outcome === "BLOCKED" && open
                    ? [
                        h("input", {
                          type: "checkbox",
                          id: checkId,
                          checked: !unselected.has(r.runId),
                          onchange: (event) =>
                            event.target.checked ? unselected.delete(r.runId) : unselected.add(r.runId),
                        }),
                        h("label", { for: checkId, class: "visually-hidden" }, `Select ${flow} for ${r.username}`),
                      ]
                    : null,
                ),
                h("th", { scope: "row" }, flow),
                h("td", {}, r.machine?.name ?? "—"),
                h("td", {}, r.username),
                h("td", {}, r.sessionState === "LOCKED" ? "Locked" : "Disconnected"),
                h("td", {}, duration(blockedFor(rec, r))),
                h(
                  "td",
                  { class: "outcome" },
                  OUTCOMES[r.outcome] ?? r.outcome,
                  r.disconnectRequestedAt && r.outcome === "BLOCKED"
                    ? [" ", h("span", { class: "tag", "data-disconnect": "requested" }, "Disconnect requested")]
                    : null,
                ),
              );
            }),
          ),
        ),
      ),
      h("div", { class: "button-row" }, disconnect, refresh),
    );
  }

  /** Why the list is empty, honestly: detection may be off where the caller's runs are (R31). */
  function emptyText() {
    const environments = session.environments;
    if (!environments.length) return "You hold no role in any environment, so no recommendation can reach you.";
    const off = environments.filter((e) => !e.sessionRecommendations);
    if (off.length === environments.length) {
      return `Session-lock detection is off in ${off.length === 1 ? off[0].name : "every environment you can see"}: runs blocked by a locked or disconnected session are not detected, so none is shown here. An environment admin can turn it on in the environment's settings.`;
    }
    const note = off.length
      ? ` Session-lock detection is off in ${off.map((e) => e.name).join(", ")}: blocked runs there are not detected.`
      : "";
    return `No recommendation: no run of yours is blocked by a user's session.${note}`;
  }

  function render() {
    const recs = [...shown.values()].sort(
      (a, b) => (a.status === "OPEN" ? 0 : 1) - (b.status === "OPEN" ? 0 : 1) || b.raisedAt.localeCompare(a.raisedAt),
    );
    const open = recs.filter((r) => r.status === "OPEN").length;
    count.textContent = `${open} open`;
    // Keep keyboard focus on the same button or checkbox across a live re-render.
    const focused = document.activeElement;
    const focusKey =
      focused && list.contains(focused)
        ? [focused.closest("[data-recommendation]")?.dataset.recommendation, focused.id || focused.textContent]
        : null;
    fill(
      list,
      recs.length
        ? recs.map(card)
        : h("p", { class: "card muted", id: "no-recommendations" }, emptyText()),
    );
    if (focusKey) {
      const [recId, key] = focusKey;
      const scope = list.querySelector(`[data-recommendation="${CSS.escape(recId ?? "")}"]`);
      const again = scope && [...scope.querySelectorAll("button, input")].find((e) => e.id === key || e.textContent === key);
      if (again && !again.disabled) again.focus({ preventScroll: true });
    }
  }

  fill(
    main,
    h("div", { class: "title-row" }, h("h1", {}, "Recommendations"), count),
    h(
      "p",
      { class: "lead" },
      "Desktop flows not running: runs blocked by a user's locked or disconnected session (shown to the owner of the runs' connection).",
    ),
    list,
  );
  render();

  const unsubscribe = subscribe(
    ops.WATCH_RECOMMENDATIONS,
    {},
    ({ sessionRecommendations: update }) => {
      if (stopped) return;
      if (update.snapshot) shown.clear();
      for (const id of update.removedIds) shown.delete(id);
      for (const rec of update.recommendations) keep(rec);
      render();
    },
    (error) => stopped || showError(error),
  );
  // The window's countdown and "blocked for" move on without a message.
  const ticker = setInterval(() => {
    if (!list.contains(document.activeElement)) render();
  }, 15_000);
  return () => {
    stopped = true;
    clearInterval(ticker);
    unsubscribe();
  };
}
