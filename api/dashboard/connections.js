// Connections (R20-R22): the caller's own (every one for environment admins). Passwords are
// write-only: the page can set one, never read one back.
import { allPages, request } from "./api.js";
import { fill, h, timeAgo } from "./dom.js";
import { actionForm, input } from "./manage.js";
import * as ops from "./operations.js";
import { announce, session, severalEnvironments, showError } from "./ui.js";

function mayChange(connection) {
  const me = session.me;
  if (me.user.isAdmin || connection.owner?.id === me.user.id) return true;
  return me.roles.some((r) => r.environmentId === connection.environment?.id && r.role === "ENVIRONMENT_ADMIN");
}

function target(c) {
  if (c.machine) return h("a", { href: `#/machines/${encodeURIComponent(c.machine.id)}` }, c.machine.name);
  if (c.group) return h("a", { href: `#/groups/${encodeURIComponent(c.group.id)}` }, c.group.name);
  if (c.gateway) return `Gateway ${c.gateway.name}`;
  return h("span", { class: "muted" }, "—");
}

function targetChoice(id, machines, groups) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, "Machine or group"),
    h(
      "select",
      { id, required: true },
      machines.map((m) => h("option", { value: `machine:${m.id}` }, `Machine ${m.name}`)),
      groups.map((g) => h("option", { value: `group:${g.id}` }, `Group ${g.name}`)),
    ),
  );
}

function chosenTarget(value) {
  const [kind, id] = value.split(":");
  return kind === "machine" ? { machineId: id } : { groupId: id };
}

function password(label, id) {
  return input(label, { id, type: "password", autocomplete: "new-password", required: true });
}

export function connectionsView(main) {
  let stopped = false;
  const several = severalEnvironments();
  const body = h("div");
  const count = h("p", { class: "count", id: "connection-count" });

  async function load() {
    try {
      const [{ nodes }, choices] = await Promise.all([
        allPages(ops.CONNECTIONS, {}, "connections"),
        request(ops.RUN_FILTER_CHOICES),
      ]);
      if (!stopped) render(nodes, choices);
    } catch (error) {
      if (!stopped) showError(error);
    }
  }

  function rowActions(c, machines, groups) {
    if (!mayChange(c)) return null;
    if (c.connectivity === "GATEWAY") {
      return h(
        "details",
        {},
        h("summary", {}, `Switch ${c.name} to direct`),
        actionForm({
          id: `switch-${c.id}`,
          legend: "A direct connection (R22): its target and credentials again",
          submit: "Switch to direct",
          fields: [
            targetChoice(`switch-target-${c.id}`, machines, groups),
            input("Windows user", { id: `switch-user-${c.id}`, value: c.windowsUsername, required: true }),
            password("Password", `switch-password-${c.id}`),
          ],
          document: ops.SWITCH_TO_DIRECT,
          collect: (form) => ({
            input: {
              connectionId: c.id,
              ...chosenTarget(form.querySelector(`#switch-target-${c.id}`).value),
              windowsUsername: form.querySelector(`#switch-user-${c.id}`).value,
              password: form.querySelector(`#switch-password-${c.id}`).value,
            },
          }),
          done: async () => {
            await load();
            announce(`${c.name} is now direct`);
          },
        }),
      );
    }
    return h(
      "details",
      {},
      h("summary", {}, `Change the password of ${c.name}`),
      actionForm({
        id: `password-${c.id}`,
        legend: "A new password (it is stored encrypted and never shown)",
        submit: "Set password",
        fields: [password("New password", `password-input-${c.id}`)],
        document: ops.UPDATE_CONNECTION,
        collect: (form) => ({ input: { id: c.id, password: form.querySelector(`#password-input-${c.id}`).value } }),
        done: async () => {
          await load();
          announce(`Password of ${c.name} changed`);
        },
      }),
    );
  }

  function render(connections, choices) {
    const machines = choices.machines.nodes;
    const groups = choices.machineGroups.nodes;
    count.textContent = `${connections.length} connection${connections.length === 1 ? "" : "s"}`;
    fill(
      body,
      machines.length || groups.length
        ? h(
            "details",
            { class: "card", id: "create-connection" },
            h("summary", {}, "Create a connection"),
            actionForm({
              id: "create-connection-form",
              legend: "New direct connection (R20)",
              submit: "Create",
              fields: [
                input("Name", { id: "connection-name", required: true, maxlength: 100 }),
                targetChoice("connection-target", machines, groups),
                input("Windows user", { id: "connection-user", required: true, placeholder: "CONTOSO\\robot" }),
                password("Password", "connection-password"),
              ],
              document: ops.CREATE_CONNECTION,
              collect: (form) => ({
                input: {
                  name: form.querySelector("#connection-name").value,
                  ...chosenTarget(form.querySelector("#connection-target").value),
                  windowsUsername: form.querySelector("#connection-user").value,
                  password: form.querySelector("#connection-password").value,
                },
              }),
              done: async ({ connection }) => {
                await load();
                announce(`Connection ${connection.name} created`);
              },
            }),
          )
        : null,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "grid", id: "connections" },
          h("caption", { class: "visually-hidden" }, "Connections you can see"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Name"),
              several ? h("th", { scope: "col" }, "Environment") : null,
              ["Connectivity", "Machine or group", "Runs as", "Password", "Owner", "Changed", "Actions"].map((t) => h("th", { scope: "col" }, t)),
            ),
          ),
          h(
            "tbody",
            {},
            connections.length
              ? connections.map((c) =>
                  h(
                    "tr",
                    { "data-connection": c.name, "data-connectivity": c.connectivity },
                    h("th", { scope: "row" }, c.name),
                    several ? h("td", {}, c.environment?.name ?? "—") : null,
                    h("td", {}, c.connectivity === "GATEWAY" ? h("span", { class: "tag warn" }, "Gateway (legacy, R22)") : "Direct"),
                    h("td", {}, target(c)),
                    h("td", {}, c.windowsUsername),
                    h("td", {}, c.hasPassword ? "Set" : "None"),
                    h("td", {}, c.owner?.displayName ?? "—"),
                    h("td", {}, timeAgo(c.updatedAt)),
                    h("td", {}, rowActions(c, machines, groups)),
                  ),
                )
              : h(
                  "tr",
                  {},
                  h(
                    "td",
                    { colspan: several ? 9 : 8, class: "empty", id: "connections-empty" },
                    session.environments.length
                      ? "No connection yet: you see your own connections (environment admins: all of their environments')."
                      : "You hold no role in any environment, so there are no connections to show.",
                  ),
                ),
          ),
        ),
      ),
    );
  }

  fill(main, h("div", { class: "title-row" }, h("h1", {}, "Connections"), count), body);
  load();
  return () => {
    stopped = true;
  };
}
