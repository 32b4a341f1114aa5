"""Every mutant of the mutation benchmark (`benchmarks/mutants.py`) really changes the mock's
behaviour: its probe sees the documented behaviour on the unmutated mock and the deviation once
the mutant is applied, and undoing it restores the documented behaviour. So no mutant can
silently become a no-op when the mock changes (the benchmark's kill rate would then lie)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import pytest

from benchmarks.mutants import MUTANTS, Client, Mutant, Patcher, mock_settings
from mock_server.testing import MockServer

KINDS = {"boundary", "prose", "scenario", "schema", "security", "paging"}
APIS = {"letstrade-pos", "letstrade-channels", "customtrades", "capillary", "loke"}


@pytest.fixture(scope="module")
def mutable_mock() -> Iterator[MockServer]:
    with MockServer(mock_settings()) as server:
        yield server


def test_at_least_twenty_mutants_over_every_api_and_class() -> None:
    assert len(MUTANTS) >= 20
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    assert {m.api for m in MUTANTS} == APIS
    assert {m.kind for m in MUTANTS} == KINDS
    for mutant in MUTANTS:
        assert mutant.deviation and mutant.documented and mutant.select, mutant.name


def test_mutant_names_are_not_those_of_test_mutations() -> None:
    from tests.contracts.test_mutations import MUTATIONS

    applied = {m.apply.__name__ for m in MUTATIONS}
    assert not applied & {getattr(m.apply, "__name__", "") for m in MUTANTS}


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_changes_behaviour(mutable_mock: MockServer, mutant: Mutant) -> None:
    mutable_mock.reset()
    client = Client(mutable_mock)
    assert not mutant.probe(client), f"the unmutated mock already shows: {mutant.deviation}"
    patcher = Patcher()
    mutant.apply(mutable_mock, patcher)
    try:
        mutable_mock.reset()  # the benchmark resets before each step: a mutant must survive it
        assert mutant.probe(client), f"applied, the mutant does not show: {mutant.deviation}"
    finally:
        patcher.undo()
    mutable_mock.reset()
    assert not mutant.probe(client), f"undone, the mock still shows: {mutant.deviation}"


def test_patcher_restores_inherited_and_own_attributes() -> None:
    class Base:
        value = 1

    class Child(Base):
        pass

    child = Child()
    patcher = Patcher()
    patcher.setattr(Child, "value", 2)
    patcher.setattr(child, "value", 3)
    assert child.value == 3
    patcher.undo()
    assert child.value == 1 and "value" not in vars(Child) and "value" not in vars(child)


def test_no_two_mutants_probe_the_same_way() -> None:
    for first, second in combinations(MUTANTS, 2):
        assert first.probe is not second.probe, (first.name, second.name)
