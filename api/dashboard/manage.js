// Managing the fleet from the page. Every change goes through the public GraphQL API, and each
// control is shown only where the caller's `allowedActions` (or role) permit it; the server
// checks again and a refusal is shown as it answers.
import { mutate, request } from "./api.js";
import { fill, h } from "./dom.js";
import * as ops from "./operations.js";
import { announce, session, showError } from "./ui.js";

let forms = 0;

/** A labelled input; `attrs` go to the input. */
export function input(label, attrs) {
  const id = attrs.id ?? `field-${++forms}`;
  return h("div", { class: "field" }, h("label", { for: id }, label), h("input", { type: "text", ...attrs, id }));
}

function choose(label, id, options, value = "") {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("select", { id }, options.map(([v, t]) => h("option", { value: v, selected: v === value }, t))),
  );
}

/** A form that sends one mutation; `collect(form)` gives its variables, `done(result)` follows. */
export function actionForm({ id, legend, fields, submit, collect, document, done }) {
  const problem = h("p", { class: "error", role: "alert", id: `${id}-error` });
  return h(
    "form",
    {
      class: "action-form",
      id,
      onsubmit: async (event) => {
        event.preventDefault();
        problem.textContent = "";
        const button = event.currentTarget.querySelector("button[type=submit]");
        button.disabled = true;
        try {
          const result = await mutate(document, collect(event.currentTarget));
          await done(result);
        } catch (error) {
          problem.textContent = error.message;
        } finally {
          button.disabled = false;
        }
      },
    },
    h("fieldset", {}, h("legend", {}, legend), h("div", { class: "form-fields" }, fields), h("button", { type: "submit" }, submit), problem),
  );
}

/** A danger button that asks first, in the page (no browser dialog). */
export function confirmButton(label, question, onConfirm) {
  const area = h("div", { class: "confirm" });
  const ask = () =>
    fill(
      area,
      h("p", { role: "alert", class: "notice warn" }, question),
      h(
        "div",
        { class: "button-row" },
        h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: async () => {
              await onConfirm();
              fill(area, start());
            },
          },
          `Yes, ${label.toLowerCase()}`,
        ),
        h("button", { type: "button", class: "secondary", onclick: () => fill(area, start()) }, "Keep it"),
      ),
    );
  const start = () => h("button", { type: "button", class: "danger", onclick: ask }, label);
  fill(area, start());
  return area;
}

/** A machine key, shown this once: copy button, and what a runtime is started with. */
export function keyPanel(title, key, machineName) {
  const endpoint = new URL("/graphql", window.location.href).href;
  const command =
    `DESKFLEET_URL=${endpoint} DESKFLEET_MACHINE_KEY=${key} <your machine runtime>\n` +
    `# it authenticates every call with: Authorization: Bearer ${key}`;
  const keyText = h("code", { id: "machine-key", class: "secret" }, key);
  return h(
    "section",
    { class: "card key-panel", "aria-labelledby": "key-panel-heading", id: "key-panel" },
    h("h2", { id: "key-panel-heading" }, title),
    h("p", {}, `The key of ${machineName}, shown this once only (it is stored hashed). Copy it now.`),
    h("p", {}, keyText, " ", h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(key);
            announce("Machine key copied");
          } catch {
            window.getSelection().selectAllChildren(keyText);
            announce("Select and copy the key: the browser did not allow copying");
          }
        },
      },
      "Copy key",
    )),
    h("p", { class: "help" }, "A machine runtime uses it so:"),
    h("pre", { class: "command", id: "runtime-command" }, command),
  );
}

function adminOf(environmentId) {
  return session.me.user.isAdmin || session.me.roles.some((r) => r.environmentId === environmentId && r.role === "ENVIRONMENT_ADMIN");
}

function mayRegister(environmentId) {
  if (session.me.user.isAdmin) return true;
  const roles = session.me.roles.filter((r) => r.environmentId === environmentId).map((r) => r.role);
  return roles.some((r) => ["ENVIRONMENT_ADMIN", "ENVIRONMENT_MAKER", "MACHINE_OWNER"].includes(r));
}

// --- machines --------------------------------------------------------------------------------

/** The Machines page's "Register a machine" (R4, R5): for those whose roles allow it somewhere. */
export function registerSection(onRegistered) {
  const places = session.environments.filter((e) => mayRegister(e.id));
  if (!places.length) return null;
  const result = h("div", { id: "register-result" });
  const details = h(
    "details",
    { class: "card", id: "register" },
    h("summary", {}, "Register a machine"),
    actionForm({
      id: "register-form",
      legend: "New machine",
      submit: "Register",
      fields: [
        places.length > 1 ? choose("Environment", "register-environment", places.map((e) => [e.id, e.name])) : null,
        input("Name", { id: "register-name", required: true, maxlength: 100 }),
        input("Description", { id: "register-description", maxlength: 1000 }),
        input("Runtime version", { id: "register-version", required: true, placeholder: "2.8.73.21119" }),
        input("OS edition", { id: "register-os", required: true, placeholder: "Windows 11 Pro" }),
      ],
      document: ops.REGISTER_MACHINE,
      collect: (form) => ({
        input: {
          environmentId: form.querySelector("#register-environment")?.value ?? places[0].id,
          name: form.querySelector("#register-name").value,
          description: form.querySelector("#register-description").value,
          runtimeVersion: form.querySelector("#register-version").value,
          osEdition: form.querySelector("#register-os").value,
        },
      }),
      done: async ({ machine, machineKey }) => {
        fill(result, keyPanel(`${machine.name} is registered`, machineKey, machine.name));
        announce(`${machine.name} registered`);
        result.querySelector("h2").setAttribute("tabindex", "-1");
        result.querySelector("h2").focus();
        await onRegistered();
      },
    }),
  );
  return h("div", {}, details, result);
}

// The detail pages redraw at every live change: a management section whose facts did not change
// is the same element again, so what is being typed in it (or a key just shown) stays.
const kept = new Map();

function same(id, facts, make) {
  const key = JSON.stringify(facts);
  const before = kept.get(id);
  if (before && before.key === key) return before.element;
  const element = make();
  kept.set(id, { key, element });
  return element;
}

/** A machine's own page: edit, move, rotate its key, allocate bots, share, delete. */
export function machineManagement(machine, reload) {
  const facts = [machine.allowedActions, machine.name, machine.description, machine.unattendedBots, machine.environment?.id, machine.accessType, (machine.accessList ?? []).map((e) => [e.user.id, e.access])];
  return same(`machine:${machine.id}`, facts, () => buildMachineManagement(machine, reload));
}

/** Once a change is made: the page is redrawn first, then the change is announced, so what is
said is what is shown. */
function announcedAfter(reload) {
  return (text) => async () => {
    await reload();
    announce(text);
  };
}

/** A machine's or a group's name and description, edited in place. */
function editDetails(kind, item, document, done) {
  return actionForm({
    id: `edit-${kind}`,
    legend: "Edit details",
    submit: "Save",
    fields: [
      input("Name", { id: `edit-${kind}-name`, value: item.name, required: true, maxlength: 100 }),
      input("Description", { id: `edit-${kind}-description`, value: item.description, maxlength: 1000 }),
    ],
    document,
    collect: (form) => ({
      input: {
        id: item.id,
        name: form.querySelector(`#edit-${kind}-name`).value,
        description: form.querySelector(`#edit-${kind}-description`).value,
      },
    }),
    done,
  });
}

function buildMachineManagement(machine, reload) {
  const allowed = new Set(machine.allowedActions);
  const id = machine.id;
  const parts = [];
  const after = announcedAfter(reload);
  if (allowed.has("EDIT")) {
    parts.push(editDetails("machine", machine, ops.UPDATE_MACHINE, after("Machine saved")));
    const others = session.environments.filter((e) => e.id !== machine.environment?.id);
    if (others.length) {
      parts.push(
        actionForm({
          id: "move-machine",
          legend: "Move to another environment (R6)",
          submit: "Move",
          fields: [choose("Environment", "move-environment", others.map((e) => [e.id, e.name]))],
          document: ops.MOVE_MACHINE,
          collect: (form) => ({ id, environmentId: form.querySelector("#move-environment").value }),
          done: after("Machine moved"),
        }),
      );
    }
    const rotation = h("p", { id: "rotate-result", role: "status" });
    parts.push(
      h(
        "div",
        { class: "action-form" },
        h("h3", {}, "Machine key (R10)"),
        h(
          "p",
          { class: "help" },
          "Rotating asks the machine's runtime to take a new key (it calls completeMachineKeyRotation); until it has, maintenance cannot be switched.",
        ),
        confirmButton("Rotate key", `Ask ${machine.name}'s runtime to take a new key?`, async () => {
          try {
            await mutate(ops.ROTATE_KEY, { id });
            rotation.textContent = `Rotation requested: ${machine.name}'s runtime takes its new key at its next call.`;
            await reload();
          } catch (error) {
            showError(error);
          }
        }),
        rotation,
      ),
    );
  }
  if (machine.accessType === "ADMIN" || (machine.environment && adminOf(machine.environment.id))) {
    parts.push(
      actionForm({
        id: "allocate-bots",
        legend: "Unattended bots (R24)",
        submit: "Allocate",
        fields: [input("Bots", { id: "allocate-count", type: "number", min: 0, max: 1000, value: machine.unattendedBots, required: true })],
        document: ops.ALLOCATE_BOTS,
        collect: (form) => ({ machineId: id, count: Number(form.querySelector("#allocate-count").value) }),
        done: after("Unattended bots allocated"),
      }),
    );
  }
  if (allowed.has("SHARE") && machine.environment) parts.push(shareForm("machine", machine, reload));
  if (allowed.has("DELETE")) {
    parts.push(
      h(
        "div",
        { class: "action-form" },
        h("h3", {}, "Delete"),
        confirmButton("Delete machine", `Delete ${machine.name}? Its queued runs are cancelled and its key stops working. This cannot be undone.`, async () => {
          try {
            await mutate(ops.DELETE_MACHINE, { id });
            announce(`${machine.name} deleted`);
            window.location.hash = "#/machines";
          } catch (error) {
            showError(error);
          }
        }),
      ),
    );
  }
  if (!parts.length) return null;
  return h("section", { class: "card", id: "manage", "aria-labelledby": "manage-heading" }, h("h2", { id: "manage-heading" }, "Manage"), parts);
}

/** Share with a user of the environment (a picker of its members), as CO_OWNER or USER (R14). */
export function shareForm(kind, item, reload) {
  const pickerId = `share-user-${kind}`;
  const form = actionForm({
    id: `share-${kind}`,
    legend: "Share, or change someone's access",
    submit: "Share",
    fields: [
      choose("User", pickerId, [["", "Loading people…"]]),
      choose("Access", `share-access-${kind}`, [["USER", "User: may run flows"], ["CO_OWNER", "Co-owner: may also edit and share"]]),
    ],
    document: kind === "machine" ? ops.SHARE_MACHINE : ops.SHARE_GROUP,
    collect: (f) => {
      const chosen = { userId: f.querySelector(`#${pickerId}`).value, access: f.querySelector(`#share-access-${kind}`).value };
      return { input: kind === "machine" ? { machineId: item.id, ...chosen } : { groupId: item.id, ...chosen } };
    },
    done: async () => {
      await reload();
      announce("Shared");
    },
  });
  request(ops.MEMBERS, { environmentId: item.environment.id })
    .then(({ environmentMembers }) => {
      const picker = form.querySelector(`#${pickerId}`);
      // Someone who holds a share already: sharing again changes their access (R14).
      const held = new Map((item.accessList ?? []).map((e) => [e.user.id, e.access]));
      const people = environmentMembers.filter((u) => held.get(u.id) !== "OWNER" && u.id !== session.me.user.id);
      fill(
        picker,
        people.length
          ? people.map((u) =>
              h("option", { value: u.id }, `${u.displayName} (${u.email})${held.has(u.id) ? `, now ${held.get(u.id).toLowerCase().replace("_", "-")}` : ""}`),
            )
          : h("option", { value: "" }, "Nobody else holds a role in this environment"),
      );
    })
    .catch((error) => showError(error));
  return form;
}

// --- groups ----------------------------------------------------------------------------------

export function createGroupSection(onCreated) {
  const places = session.environments.filter((e) => mayRegister(e.id));
  if (!places.length) return null;
  return h(
    "details",
    { class: "card", id: "create-group" },
    h("summary", {}, "Create a group"),
    actionForm({
      id: "create-group-form",
      legend: "New machine group",
      submit: "Create",
      fields: [
        places.length > 1 ? choose("Environment", "group-environment", places.map((e) => [e.id, e.name])) : null,
        input("Name", { id: "group-name", required: true, maxlength: 100 }),
        input("Description", { id: "group-description", maxlength: 1000 }),
      ],
      document: ops.CREATE_GROUP,
      collect: (form) => ({
        input: {
          environmentId: form.querySelector("#group-environment")?.value ?? places[0].id,
          name: form.querySelector("#group-name").value,
          description: form.querySelector("#group-description").value,
        },
      }),
      done: async ({ group }) => {
        announce(`Group ${group.name} created`);
        await onCreated(group);
      },
    }),
  );
}

/** A group's page: edit, add and remove machines, share, delete. */
export function groupManagement(group, candidates, reload) {
  const facts = [group.allowedActions, group.name, group.description, group.environment?.id, candidates.map((m) => [m.id, m.group?.id]), (group.accessList ?? []).map((e) => [e.user.id, e.access])];
  return same(`group:${group.id}`, facts, () => buildGroupManagement(group, candidates, reload));
}

function buildGroupManagement(group, candidates, reload) {
  const allowed = new Set(group.allowedActions);
  const parts = [];
  const after = announcedAfter(reload);
  if (allowed.has("EDIT")) {
    parts.push(editDetails("group", group, ops.UPDATE_GROUP, after("Group saved")));
    const outside = candidates.filter((m) => m.group?.id !== group.id && m.environment?.id === group.environment?.id);
    parts.push(
      outside.length
        ? actionForm({
            id: "add-to-group",
            legend: "Add a machine (R11)",
            submit: "Add",
            fields: [choose("Machine", "add-machine", outside.map((m) => [m.id, m.group ? `${m.name} (now in ${m.group.name})` : m.name]))],
            document: ops.ADD_TO_GROUP,
            collect: (form) => ({ groupId: group.id, machineId: form.querySelector("#add-machine").value }),
            done: after("Machine added to the group"),
          })
        : h("p", { class: "muted", id: "no-candidates" }, "No other machine of this environment that you may add."),
    );
  }
  if (allowed.has("SHARE") && group.environment) parts.push(shareForm("group", group, reload));
  if (allowed.has("DELETE")) {
    parts.push(
      h(
        "div",
        { class: "action-form" },
        h("h3", {}, "Delete"),
        confirmButton("Delete group", `Delete ${group.name}? Its machines stay, outside any group; runs queued for the group are cancelled.`, async () => {
          try {
            await mutate(ops.DELETE_GROUP, { id: group.id });
            announce(`${group.name} deleted`);
            window.location.hash = "#/groups";
          } catch (error) {
            showError(error);
          }
        }),
      ),
    );
  }
  if (!parts.length) return null;
  return h("section", { class: "card", id: "manage", "aria-labelledby": "manage-heading" }, h("h2", { id: "manage-heading" }, "Manage"), parts);
}

/** The button that takes a machine out of its group, shown where EDIT is allowed on the group. */
export function removeFromGroupButton(machine, reload) {
  return h(
    "button",
    {
      type: "button",
      class: "secondary",
      "aria-label": `Remove ${machine.name} from the group`,
      onclick: async () => {
        try {
          await mutate(ops.REMOVE_FROM_GROUP, { machineId: machine.id });
          announce(`${machine.name} removed from the group`);
        } catch (error) {
          showError(error);
        }
        await reload();
      },
    },
    "Remove",
  );
}

// --- environment settings (admins) -------------------------------------------------------------

export function settingsView(main) {
  let stopped = false;
  fill(main, h("h1", {}, "Environment settings"), h("p", { class: "muted" }, "Loading…"));
  async function load() {
    try {
      const { environments } = await request(ops.ENVIRONMENT_SETTINGS);
      if (stopped) return;
      const mine = environments.filter((e) => adminOf(e.id));
      fill(
        main,
        h("h1", {}, "Environment settings"),
        mine.length
          ? mine.map((e) => settingsForm(e, load))
          : h("p", { class: "card empty-state", id: "settings-empty" }, "You administer no environment: only its admins change an environment's settings."),
      );
    } catch (error) {
      if (!stopped) showError(error);
    }
  }
  load();
  return () => {
    stopped = true;
  };
}

function checkbox(label, id, checked, help) {
  return h(
    "div",
    { class: "field check" },
    h("label", { for: id }, h("input", { type: "checkbox", id, checked }), " ", label),
    h("span", { class: "help" }, help),
  );
}

const ROLE_NAMES = {
  ENVIRONMENT_ADMIN: "Environment admin",
  ENVIRONMENT_MAKER: "Environment maker",
  MACHINE_OWNER: "Machine owner",
  MACHINE_USER: "Machine user",
  MACHINE_USER_CAN_SHARE: "Machine user who can share",
};

/** R13: who holds which role; grant one to a member, revoke one. */
function rolesPart(environment) {
  const key = environment.id;
  const area = h("div", { class: "roles", id: `roles-${key}` }, h("p", { class: "muted" }, "Loading roles…"));
  async function load() {
    try {
      const { environmentRoles, environmentMembers } = await request(ops.ENVIRONMENT_ROLES, { environmentId: key });
      const change = (document, variables, text) => async () => {
        try {
          await mutate(document, { input: { environmentId: key, ...variables } });
          await load();
          announce(text);
        } catch (error) {
          showError(error);
        }
      };
      fill(
        area,
        h("h3", {}, "Security roles (R13)"),
        h(
          "table",
          { class: "grid" },
          h("caption", { class: "visually-hidden" }, `Security roles in ${environment.name}`),
          h("thead", {}, h("tr", {}, ["User", "Role", ""].map((t) => h("th", { scope: "col" }, t ? t : h("span", { class: "visually-hidden" }, "Actions"))))),
          h(
            "tbody",
            {},
            environmentRoles.map(({ user, role }) =>
              h(
                "tr",
                { "data-user": user.displayName, "data-role": role },
                h("th", { scope: "row" }, user.displayName, " ", h("span", { class: "muted" }, user.email)),
                h("td", {}, ROLE_NAMES[role] ?? role),
                h(
                  "td",
                  { class: "actions" },
                  user.id === session.me.user.id
                    ? null
                    : h(
                        "button",
                        {
                          type: "button",
                          class: "secondary",
                          "aria-label": `Revoke ${ROLE_NAMES[role] ?? role} from ${user.displayName}`,
                          onclick: change(ops.REVOKE_ROLE, { userId: user.id, role }, `${user.displayName} no longer holds ${ROLE_NAMES[role]}`),
                        },
                        "Revoke",
                      ),
                ),
              ),
            ),
          ),
        ),
        actionForm({
          id: `grant-${key}`,
          legend: "Grant a role to a member",
          submit: "Grant",
          fields: [
            choose("User", `grant-user-${key}`, environmentMembers.map((u) => [u.id, `${u.displayName} (${u.email})`])),
            choose("Role", `grant-role-${key}`, Object.entries(ROLE_NAMES)),
          ],
          document: ops.ASSIGN_ROLE,
          collect: (form) => ({
            input: {
              environmentId: key,
              userId: form.querySelector(`#grant-user-${key}`).value,
              role: form.querySelector(`#grant-role-${key}`).value,
            },
          }),
          done: async () => {
            await load();
            announce("Role granted");
          },
        }),
        newcomerForm(key, load),
      );
    } catch (error) {
      showError(error);
    }
  }
  load();
  return area;
}

/** R13: a first role for someone of the organisation who holds none here yet, found by the exact
e-mail they were added with (people are looked up one address at a time, never listed). */
function newcomerForm(key, load) {
  const problem = h("p", { class: "error", role: "alert", id: `newcomer-${key}-error` });
  return h(
    "form",
    {
      class: "action-form",
      id: `newcomer-${key}`,
      onsubmit: async (event) => {
        event.preventDefault();
        problem.textContent = "";
        const form = event.currentTarget;
        const button = form.querySelector("button[type=submit]");
        button.disabled = true;
        try {
          const email = form.querySelector(`#newcomer-email-${key}`).value;
          const { personByEmail } = await request(ops.PERSON_BY_EMAIL, { email });
          if (!personByEmail) {
            problem.textContent = `Nobody active has the e-mail ${email}: an administrator adds people first.`;
            return;
          }
          const role = form.querySelector(`#newcomer-role-${key}`).value;
          await mutate(ops.ASSIGN_ROLE, { input: { environmentId: key, userId: personByEmail.id, role } });
          await load();
          announce(`${personByEmail.displayName} now holds ${ROLE_NAMES[role] ?? role}`);
        } catch (error) {
          problem.textContent = error.message;
        } finally {
          button.disabled = false;
        }
      },
    },
    h(
      "fieldset",
      {},
      h("legend", {}, "Grant a first role to someone by e-mail"),
      h(
        "div",
        { class: "form-fields" },
        input("E-mail", { id: `newcomer-email-${key}`, type: "email", required: true, maxlength: 320 }),
        choose("Role for them", `newcomer-role-${key}`, Object.entries(ROLE_NAMES)),
      ),
      h("button", { type: "submit" }, "Grant by e-mail"),
      problem,
    ),
  );
}

function settingsForm(environment, reload) {
  const key = environment.id;
  return h(
    "section",
    { class: "card", "aria-labelledby": `settings-${key}`, "data-environment": environment.name },
    h("h2", { id: `settings-${key}` }, environment.name),
    rolesPart(environment),
    actionForm({
      id: `settings-form-${key}`,
      legend: `Settings of ${environment.name}`,
      submit: "Save settings",
      fields: [
        checkbox("Restricted registration (R4)", `restrict-${key}`, environment.restrictRegistration, "Only Machine Owners (and admins) register machines."),
        checkbox("Session-lock detection (R31)", `sessions-${key}`, environment.sessionRecommendations, "Detect runs blocked by a locked or disconnected session and recommend a fix."),
        input("Max queue time, seconds (R27)", { id: `queue-${key}`, type: "number", min: 1, value: environment.maxQueueSeconds }),
        input("Unattended bots to allocate (R24)", { id: `capacity-${key}`, type: "number", min: 0, value: environment.unattendedCapacity }),
        input("Minimum runtime version (R41; empty: any)", { id: `runtime-${key}`, value: environment.minRuntimeVersion ?? "" }),
      ],
      document: ops.UPDATE_ENVIRONMENT,
      collect: (form) => ({
        input: {
          id: key,
          restrictRegistration: form.querySelector(`#restrict-${key}`).checked,
          sessionRecommendations: form.querySelector(`#sessions-${key}`).checked,
          maxQueueSeconds: Number(form.querySelector(`#queue-${key}`).value),
          unattendedCapacity: Number(form.querySelector(`#capacity-${key}`).value),
          minRuntimeVersion: form.querySelector(`#runtime-${key}`).value.trim(),
        },
      }),
      done: async () => {
        announce(`Settings of ${environment.name} saved`);
        const fresh = session.environments.find((e) => e.id === key);
        if (fresh) fresh.sessionRecommendations = document.getElementById(`sessions-${key}`).checked;
        await reload();
      },
    }),
  );
}
