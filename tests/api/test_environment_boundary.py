"""The environment boundary (R38), tried against every operation of the schema.

The operations are read from ``schema.graphql``: every Query, Mutation and Subscription field
that takes an ID (as an argument, a list of them, or a field of an input object). One of each kind
of object is made in environment B through the API. Each ID slot is then given the id of B's
object of its kind by the users of each role in environment A, and by a machine key of A; the
other required ID slots get A's objects (made by A's admin), everything else a valid value. The
answer must be the one the same call gets with a random id (ids written ``<id>``), and no row of
any table may change. Subscriptions are run through the schema's ``subscribe`` and compared on
their first message.

A slot the generator cannot call meaningfully is listed in ``NOT_EXERCISED`` with the reason; a
new ID-taking slot that is neither exercised nor listed fails the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    Undefined,
    build_schema,
    get_named_type,
    is_enum_type,
    is_input_object_type,
    is_interface_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    is_union_type,
)
from sqlalchemy import text
from sqlmodel import SQLModel

from api.context import Context
from api.schema import schema as strawberry_schema
from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.identity import identity
from tests.graphql import Fleet, GraphQLClient, Person, RegisteredMachine, written_masked
from tests.runs_given import UPDATE_ENVIRONMENT, Runs

SCHEMA: GraphQLSchema = build_schema(
    (Path(__file__).resolve().parents[2] / "schema.graphql").read_text()
)
ROLES = (
    "ENVIRONMENT_ADMIN",
    "ENVIRONMENT_MAKER",
    "MACHINE_OWNER",
    "MACHINE_USER",
    "MACHINE_USER_CAN_SHARE",
)
SESSION_USER = r"CONTOSO\robot"

# Slot (``Root.field.path``) -> why it is not called with another environment's object.
NOT_EXERCISED: dict[str, str] = {
    "Query.connections.filter.gatewayId": "no gateway can be made through the API (R22)",
    "Mutation.createConnection.input.gatewayId": "no gateway can be made through the API (R22)",
    "Mutation.completeMachineCommand.id": "a command is made only by a run's cancellation or a "
    "recommendation's action on one machine, and is seen by that machine's key alone",
    "Mutation.assignRole.input.userId": "the user directory is not behind the environment "
    "boundary: an environment's admins add any user of the organisation (docs/security.md)",
    "Mutation.shareMachine.input.userId": "the user directory is not behind the boundary: a "
    "machine may be shared with any user of the organisation (docs/security.md)",
    "Mutation.shareMachineGroup.input.userId": "the user directory is not behind the boundary: "
    "a group may be shared with any user of the organisation (docs/security.md)",
    "Query.flowRuns.filter.triggeredById": "a filter, not a look-up: the runs listed are the "
    "caller's visible ones whoever triggered them, so another environment's user matches none",
    "Subscription.runUpdates.filter.triggeredById": "a filter, as flowRuns's: it narrows the "
    "runs the caller may see and names nobody",
}

# The kind of object an ID slot names, by the slot's name; ``id`` by its field's name.
KIND_BY_SLOT = {
    "machineId": "machine",
    "groupId": "group",
    "connectionId": "connection",
    "flowId": "flow",
    "runId": "run",
    "runIds": "run",
    "recommendationId": "recommendation",
    "environmentId": "environment",
    "userId": "user",
    "actorId": "user",
    "targetId": "machine",
}
KIND_BY_FIELD = (  # the first word found in the field's name, in this order
    ("WebhookEndpoint", "webhook endpoint"),
    ("WebhookDelivery", "webhook delivery"),
    ("ApiToken", "token"),
    ("MachineGroup", "group"),
    ("Machine", "machine"),
    ("Connection", "connection"),
    ("DesktopFlow", "flow"),
    ("Recommendation", "recommendation"),
    ("Run", "run"),
    ("User", "user"),
    ("Environment", "environment"),
)

VALUES_BY_NAME: dict[str, Any] = {
    "name": "hostile",
    "displayName": "hostile",
    "description": "hostile",
    "email": "hostile@example.test",
    "windowsUsername": "robot",
    "password": "Tr0ub4dor&3 horse-battery-staple",
    "runtimeVersion": "2.8.73.21119",
    "flowExtensionsVersion": "1.2.4.1",
    "osEdition": "Windows 11 Pro",
    "first": 5,
    "count": 1,
    "attempt": 1,
    "enabled": True,
    "mode": "UNATTENDED",
    "outcome": "SUCCEEDED",
}


@dataclass(frozen=True)
class Slot:
    root: str
    field: str
    path: tuple[str, ...]
    kind: str

    @property
    def key(self) -> str:
        return ".".join((self.root, self.field, *self.path))


def _id_paths(type_: GraphQLInputType, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    named = get_named_type(type_)
    if named.name == "ID":
        yield path
    elif is_input_object_type(named):
        assert isinstance(named, GraphQLInputObjectType)
        for name, field in named.fields.items():
            yield from _id_paths(field.type, (*path, name))


def _kind(field_name: str, path: tuple[str, ...]) -> str | None:
    if path[-1] in KIND_BY_SLOT:
        return KIND_BY_SLOT[path[-1]]
    if path[-1] == "id":
        upper = field_name[0].upper() + field_name[1:]
        for word, kind in KIND_BY_FIELD:
            if word in upper:
                return kind
    return None


def id_slots() -> tuple[list[Slot], list[str]]:
    """Every ID slot of the schema, and the keys of those whose kind cannot be told."""
    slots: list[Slot] = []
    unknown: list[str] = []
    for root in ("Query", "Mutation", "Subscription"):
        type_ = SCHEMA.get_type(root)
        assert isinstance(type_, GraphQLObjectType)
        for name, field in type_.fields.items():
            for arg_name, arg in field.args.items():
                for path in _id_paths(arg.type, (arg_name,)):
                    kind = _kind(name, path)
                    key = ".".join((root, name, *path))
                    if kind is None:
                        unknown.append(key)
                    else:
                        slots.append(Slot(root, name, path, kind))
    return slots, unknown


# --- documents ----------------------------------------------------------------------------------


def _selection(type_: GraphQLOutputType, depth: int = 0) -> str:
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    if is_union_type(named) or is_interface_type(named):
        members = named.types if is_union_type(named) else SCHEMA.get_possible_types(named)  # type: ignore[attr-defined]
        parts = ["__typename"]
        for member in members:
            inner = _selection(member, depth)
            parts.append(f"... on {member.name} {inner}")
        return "{ " + " ".join(parts) + " }"
    assert isinstance(named, GraphQLObjectType)
    parts = ["__typename"]
    for name, field in named.fields.items():
        if any(is_non_null_type(a.type) for a in field.args.values()):
            continue
        if is_leaf_type(get_named_type(field.type)):
            parts.append(name)
        elif depth == 0:
            inner = get_named_type(field.type)
            if is_object_type(inner) and "id" in inner.fields:  # type: ignore[union-attr]
                parts.append(f"{name} {{ __typename id }}")
            else:
                parts.append(f"{name} {{ __typename }}")
    return "{ " + " ".join(parts) + " }"


def _value(type_: GraphQLInputType, name: str, ids: dict[str, str]) -> Any:
    """A valid value for a required argument or input field; ID slots come from ``ids``."""
    if is_non_null_type(type_):
        return _value(type_.of_type, name, ids)  # type: ignore[attr-defined]
    if is_list_type(type_):
        return [_value(type_.of_type, name, ids)]  # type: ignore[attr-defined]
    if is_input_object_type(type_):
        assert isinstance(type_, GraphQLInputObjectType)
        return {
            field_name: _value(field.type, field_name, ids)
            for field_name, field in type_.fields.items()
            if is_non_null_type(field.type) and field.default_value is Undefined
        }
    if type_.name == "ID":  # type: ignore[attr-defined]
        return ids[name]
    if name in VALUES_BY_NAME:
        return VALUES_BY_NAME[name]
    if is_enum_type(type_):
        return next(iter(type_.values))  # type: ignore[attr-defined]
    return {
        "String": "hostile",
        "Int": 1,
        "Float": 1.0,
        "Boolean": True,
        "DateTime": "2026-01-01T00:00:00+00:00",
    }[type_.name]  # type: ignore[attr-defined]


def _set(variables: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    holder = variables
    for step in path[:-1]:
        holder = holder.setdefault(step, {})
    holder[path[-1]] = [value] if path[-1] == "runIds" else value


def call(slot: Slot, hidden: str, companions: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The document and variables of ``slot``'s field with ``hidden`` in the slot."""
    root = SCHEMA.get_type(slot.root)
    assert isinstance(root, GraphQLObjectType)
    field: GraphQLField = root.fields[slot.field]
    variables: dict[str, Any] = {}
    for arg_name, arg in field.args.items():
        required = is_non_null_type(arg.type) and arg.default_value is Undefined
        if not required and arg_name != slot.path[0]:
            continue
        named = get_named_type(arg.type)
        if is_input_object_type(named) and not required:
            variables[arg_name] = {}
        else:
            companion_ids = {
                p[-1]: companions[kind]
                for p in _id_paths(arg.type, (arg_name,))
                if (kind := _kind(slot.field, p)) in companions
            }
            variables[arg_name] = _value(arg.type, arg_name, companion_ids)
    _set(variables, slot.path, hidden)
    declared = ", ".join(f"${a}: {field.args[a].type}" for a in variables)
    passed = ", ".join(f"{a}: ${a}" for a in variables)
    operation = slot.root.lower()
    document = (
        f"{operation}({declared}) {{ {slot.field}({passed}) {_selection(field.type)} }}"
        if variables
        else f"{operation} {{ {slot.field} {_selection(field.type)} }}"
    )
    return document, variables


# --- the two environments -----------------------------------------------------------------------


@dataclass
class Seeded:
    ids: dict[str, str]  # kind -> id


async def _seed(fleet: Fleet, runs: Runs, admin: Person, domain: DomainContext) -> Seeded:
    """One object of each kind, made by ``admin`` in ``fleet``'s environment."""
    api = fleet.api
    await api.data(
        UPDATE_ENVIRONMENT,
        {
            "input": {
                "id": fleet.environment_id,
                "sessionRecommendations": True,
                "unattendedCapacity": 10,
            }
        },
        token=fleet.admin_token,
    )
    machine: RegisteredMachine = await runs.machine(
        admin, bots=1, sessions={SESSION_USER: "LOCKED"}
    )
    group_id = await runs.group(admin)
    target = await runs.target(admin, machine=machine, username=SESSION_USER)
    run_id = await runs.trigger(target)
    await dispatch_once(domain)  # the locked session raises a recommendation (R32)
    recommendations = await api.data(
        "query($env: ID) { sessionRecommendations(environmentId: $env, everyRecipient: true) "
        "{ id } }",
        {"env": fleet.environment_id},
        token=admin.token,
    )
    (recommendation,) = recommendations["sessionRecommendations"]
    me = await api.data("{ me { tokens { id } } }", token=admin.token)
    endpoint = await api.data(
        "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) "
        "{ ... on WebhookEndpointSecretPayload { endpoint { id } } } }",
        {
            "input": {
                "environmentId": fleet.environment_id,
                "url": "https://93.184.215.14/hooks",  # public; nothing is sent in these tests
                "eventTypes": ["RUN_FINISHED"],
            }
        },
        token=admin.token,
    )
    endpoint_id = endpoint["createWebhookEndpoint"]["endpoint"]["id"]
    ping = await api.data(
        "mutation($id: ID!) { pingWebhookEndpoint(id: $id) "
        "{ ... on WebhookDeliveryPayload { deliveryId } } }",
        {"id": endpoint_id},
        token=admin.token,
    )
    return Seeded(
        ids={
            "machine": machine.id,
            "group": group_id,
            "connection": target.connection_id,
            "flow": target.flow_id,
            "run": run_id,
            "recommendation": recommendation["id"],
            "environment": fleet.environment_id,
            "user": admin.id,
            "token": me["me"]["tokens"][0]["id"],
            "webhook endpoint": endpoint_id,
            "webhook delivery": ping["pingWebhookEndpoint"]["deliveryId"],
        }
    )


async def _tables(domain: DomainContext) -> dict[str, list[tuple[Any, ...]]]:
    state: dict[str, list[tuple[Any, ...]]] = {}
    async with domain.db.read() as session:
        connection = await session.connection()
        for table in SQLModel.metadata.sorted_tables:
            rows = await connection.execute(text(f"SELECT * FROM {table.name}"))
            state[table.name] = sorted((tuple(row) for row in rows.all()), key=repr)
    return state


async def _answer(
    api: GraphQLClient,
    domain: DomainContext,
    slot: Slot,
    document: str,
    variables: dict[str, Any],
    token: str,
) -> dict[str, Any]:
    if slot.root != "Subscription":
        return await api.execute(document, variables, token=token)
    principal = await identity.authenticate(domain, token)
    stream = await strawberry_schema.subscribe(
        document,
        variable_values=variables,
        context_value=Context(domain=domain, credential=principal),
    )
    if not hasattr(stream, "__anext__"):
        first = stream
    else:
        try:
            first = await anext(stream)  # type: ignore[arg-type]
        finally:
            await stream.aclose()  # type: ignore[union-attr]
    return {
        "data": first.data,  # type: ignore[union-attr]
        "errors": [
            {"message": e.message, "path": e.path, "extensions": e.extensions}
            for e in first.errors or []  # type: ignore[union-attr]
        ],
    }


def test_every_id_taking_field_is_exercised_or_listed() -> None:
    slots, unknown = id_slots()
    keys = {s.key for s in slots}
    assert not [k for k in unknown if k not in NOT_EXERCISED], (
        "an ID-taking field the boundary test cannot call: teach it the kind of object "
        "(KIND_BY_SLOT, KIND_BY_FIELD) or list it in NOT_EXERCISED with the reason"
    )
    assert not [k for k in NOT_EXERCISED if k not in keys | set(unknown)], "stale entries"


@pytest.mark.asyncio
@pytest.mark.rule("R38")
async def test_another_environments_objects_are_answered_as_unknown_ids(
    fleet: Fleet, domain: DomainContext
) -> None:
    api = fleet.api
    environment_b = await fleet.environment("B")
    fleet_b = Fleet(api, fleet.admin_token, environment_b)
    admin_b = await fleet_b.person("ENVIRONMENT_ADMIN", name="admin-b")
    seeded_b = await _seed(fleet_b, Runs(fleet_b), admin_b, domain)
    admin_a = await fleet.person("ENVIRONMENT_ADMIN", name="admin-a")
    seeded_a = await _seed(fleet, Runs(fleet), admin_a, domain)
    callers: dict[str, str] = {role: (await fleet.person(role)).token for role in ROLES}
    callers["machine key"] = (await fleet.machine(admin_a, "key-of-a")).key
    for token in callers.values():  # first uses write last_used_at: before any comparison
        await api.execute("{ environments { id } }", token=token)
    slots, _ = id_slots()
    exercised = [s for s in slots if s.key not in NOT_EXERCISED]
    assert len(exercised) > 60
    b_values = set(seeded_b.ids.values())
    failures: list[str] = []

    for slot in exercised:
        hidden_id = seeded_b.ids[slot.kind]
        for who, token in callers.items():
            before = await _tables(domain)
            document, hidden_vars = call(slot, hidden_id, seeded_a.ids)
            hidden = await _answer(api, domain, slot, document, hidden_vars, token)
            random_id = str(uuid.uuid4())
            _, random_vars = call(slot, random_id, seeded_a.ids)
            unknown = await _answer(api, domain, slot, document, random_vars, token)
            after = await _tables(domain)
            # An error without a code is the document's or the variables': nothing was tried.
            if any(not (e.get("extensions") or {}).get("code") for e in hidden.get("errors") or []):
                failures.append(f"{slot.key} as {who}: not a meaningful call: {hidden}")
            elif written_masked(hidden, hidden_id) != written_masked(unknown, random_id):
                failures.append(f"{slot.key} as {who}: {hidden} != {unknown}")
            elif any(v in json.dumps(hidden, default=str) for v in b_values - {hidden_id}):
                failures.append(f"{slot.key} as {who}: names another of B's objects: {hidden}")
            if after != before:
                changed = [t for t in before if before[t] != after[t]]
                failures.append(f"{slot.key} as {who}: changed {changed}")

    assert not failures, "\n".join(failures)
