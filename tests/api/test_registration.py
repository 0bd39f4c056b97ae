"""Machine registration gates R1-R5, through the GraphQL API."""

import pytest

from tests.graphql import Fleet

pytestmark = pytest.mark.asyncio


@pytest.mark.rule("R1")
async def test_r1_registration_accepted_in_production_refused_in_teams(fleet: Fleet) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    teams = await fleet.environment("Teams space", kind="TEAMS")
    await fleet.grant(owner.id, "ENVIRONMENT_MAKER", environment_id=teams)

    accepted = await fleet.register(owner, "bot-01")
    refused = await fleet.register(owner, "bot-02", environment_id=teams)

    assert accepted["__typename"] == "RegisteredMachinePayload"
    assert refused["__typename"] == "RuleViolationError"
    assert refused["code"] == "TEAMS_ENVIRONMENT"
    assert refused["rule"] == "R1"
