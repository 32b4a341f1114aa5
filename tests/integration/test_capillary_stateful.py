"""A hypothesis state machine over HTTP: registrations, lookups and updates across sources and
source accounts, against a model of customers, their source accounts and points. Every response
is checked against what the model says it must be (status, codes, createdId, warnings, side
effects, the profiles a lookup returns).

Small pools of identifiers make collisions common: the same identifier in the same source (8006),
in another source (a new source account on the same customer), identifiers of two customers
(8014), two values of one type in a profile (8013), and two e-mails equal in their first 255
characters (one identifier after truncation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    multiple,
    rule,
    run_state_machine_as_test,
)

from mock_server.testing import MockServer
from tests.integration.auth_headers import capillary_basic

SOURCES = ["INSTORE", "LINE", "WECHAT", "MOBILE_APP"]
ACCOUNTS = ["", "acc-1"]
LONG = "x" * 260
POOL = [
    ("mobile", "919800000001"),
    ("mobile", "+919800000001"),
    ("mobile", "919800000002"),
    ("mobile", "919800000003"),
    ("email", "a@example.com"),
    ("email", "b@example.com"),
    ("email", LONG + "@a.example"),
    ("email", LONG + "@b.example"),
    ("externalId", "ext-1"),
    ("externalId", "ext-2"),
]
NAMES = [None, "Ada", "Grace", "N" * 120]

Key = tuple[str, str]
Account = tuple[str, str]


def normalise(kind: str, value: str) -> str:
    if kind == "email":
        return value[:255]
    if kind == "mobile":
        return value.removeprefix("+")
    return value


@dataclass
class ModelAccount:
    first_name: str | None
    keys: list[Key]


@dataclass
class ModelCustomer:
    id: int
    accounts: dict[Account, ModelAccount] = field(default_factory=dict)
    points: int = 0


profiles_strategy = st.lists(
    st.tuples(
        st.sampled_from(SOURCES),
        st.sampled_from(ACCOUNTS),
        st.lists(st.sampled_from(POOL), min_size=1, max_size=3),
        st.sampled_from(NAMES),
    ),
    min_size=1,
    max_size=2,
)


class CapillaryMachine(RuleBasedStateMachine):
    customers = Bundle("customers")

    def __init__(self, mock: MockServer) -> None:
        super().__init__()
        self.mock = mock
        mock.reset()
        self.auth = {"Authorization": capillary_basic(mock.credentials_cache())}
        self.model: dict[int, ModelCustomer] = {}
        self.owner: dict[Key, int] = {}

    # -- helpers -----------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.mock.session.request(
            method, self.mock.url("capillary", path), headers=self.auth, timeout=30, **kwargs
        )
        assert response.status_code != 500, response.text
        return response

    @staticmethod
    def _codes(response: requests.Response) -> set[int]:
        return {item["code"] for item in response.json()["errors"]}

    # -- rules -------------------------------------------------------------------------------
    @rule(
        target=customers,
        profiles=profiles_strategy,
        points=st.sampled_from([None, 0, 75, 12.5]),
        label=st.sampled_from([None, "Gold"]),
    )
    def register(
        self, profiles: list[tuple[str, str, list[Key], str | None]], points: float | None, label: str | None
    ) -> int | MultipleResults[int]:
        body: dict[str, Any] = {"profiles": []}
        for source, account_id, identifiers, name in profiles:
            profile: dict[str, Any] = {
                "identifiers": [{"type": t, "value": v} for t, v in identifiers],
                "source": source,
            }
            if account_id:
                profile["accountId"] = account_id
            if name is not None:
                profile["firstName"] = name
            body["profiles"].append(profile)
        if points is not None:
            body["loyaltyProgramEnrollments"] = [{"programId": 469, "loyaltyPoints": points}]
        if label is not None:
            body["statusLabel"] = label
        response = self._call("POST", "/v2/customers", json=body)

        # what the model expects: first the checks of the body ...
        parsed: list[tuple[Account, list[Key], str | None]] = []
        expected_codes: set[int] = set()
        seen_accounts: set[Account] = set()
        for source, account_id, identifiers, name in profiles:
            keys: list[Key] = []
            for kind, value in identifiers:
                key = (kind, normalise(kind, value))
                if key in keys:
                    continue
                if any(k[0] == kind for k in keys):
                    expected_codes.add(8013)
                    continue
                keys.append(key)
            if (source, account_id) in seen_accounts:
                expected_codes.add(8014)
            seen_accounts.add((source, account_id))
            parsed.append(((source, account_id), keys, name[:100] if name is not None else None))
        if expected_codes:
            assert response.status_code == 400, response.text
            assert self._codes(response) == expected_codes, response.text
            return multiple()
        # ... then which customer the identifiers belong to
        owners = {self.owner[k] for _, keys, _ in parsed for k in keys if k in self.owner}
        if any(account in self.model[o].accounts for o in owners for account, _, _ in parsed):
            assert response.status_code == 409 and self._codes(response) == {8006}, response.text
            return multiple()
        if len(owners) > 1:
            assert response.status_code == 400 and self._codes(response) == {8014}, response.text
            return multiple()
        assert response.status_code == 200, response.text
        answer = response.json()
        if owners:
            customer = self.model[owners.pop()]
            assert answer == {"createdId": customer.id, "warnings": [], "sideEffects": []}
        else:
            assert answer["createdId"] not in self.model
            customer = self.model.setdefault(answer["createdId"], ModelCustomer(answer["createdId"]))
            expected_warnings = [] if label else [8107]
            assert [w["code"] for w in answer["warnings"]] == expected_warnings
            awarded = int(points or 0)
            expected_effects = (
                []
                if not points
                else [
                    {
                        "entityType": "USER",
                        "rawAwardedPoints": float(points),
                        "awardedPoints": awarded,
                        "type": "points",
                    }
                ]
            )
            assert answer["sideEffects"] == expected_effects
            customer.points += awarded
        for account, keys, name in parsed:
            customer.accounts[account] = ModelAccount(name, keys)
            for key in keys:
                self.owner[key] = customer.id
        return customer.id

    @rule(source=st.sampled_from([*SOURCES, "ALL"]), identifier=st.sampled_from(POOL))
    def lookup(self, source: str, identifier: Key) -> None:
        kind, value = identifier
        response = self._call(
            "GET",
            "/v2/customers/lookup/customerDetails",
            params={"source": source, "identifierName": kind, "identifierValue": value},
        )
        key = (kind, normalise(kind, value))
        customer = self.model.get(self.owner.get(key, -1))
        matching = (
            {}
            if customer is None
            else {account: details for account, details in customer.accounts.items() if source in ("ALL", account[0])}
        )
        if customer is None or not any(key in details.keys for details in matching.values()):
            assert response.status_code == 404 and self._codes(response) == {8015}, response.text
            return
        assert response.status_code == 200, response.text
        found = response.json()
        assert found["id"] == customer.id
        assert found["loyaltyPoints"] == customer.points
        got = {(p["source"], p["accountId"]): p for p in found["profiles"]}
        assert set(got) == set(matching)
        for account, details in matching.items():
            assert [(i["type"], i["value"]) for i in got[account]["identifiers"]] == details.keys
            assert got[account].get("firstName") == details.first_name

    @rule(customer_id=customers, source=st.sampled_from(SOURCES), name=st.sampled_from(["Lin", "M" * 101]))
    def update(self, customer_id: int, source: str, name: str) -> None:
        response = self._call(
            "PUT", f"/v2/customers/{customer_id}", params={"source": source}, json={"profiles": [{"firstName": name}]}
        )
        customer = self.model[customer_id]
        accounts = [a for a in customer.accounts if a[0] == source]
        if not accounts:
            assert response.status_code == 404 and self._codes(response) == {8015}, response.text
            return
        assert response.status_code == 200, response.text
        assert response.json() == {"createdId": customer_id, "warnings": [], "sideEffects": []}
        for account in accounts:
            customer.accounts[account].first_name = name[:100]

    @rule(customer_id=customers, identifier=st.sampled_from(POOL))
    def update_cannot_change_identifiers(self, customer_id: int, identifier: Key) -> None:
        customer = self.model[customer_id]
        (source, account_id), details = next(iter(customer.accounts.items()))
        key = (identifier[0], normalise(*identifier))
        sent = details.keys if key in details.keys else [*details.keys, key]
        response = self._call(
            "PUT",
            f"/v2/customers/{customer_id}",
            params={"source": source},
            json={"profiles": [{"accountId": account_id, "identifiers": [{"type": t, "value": v} for t, v in sent]}]},
        )
        if sent == details.keys:
            assert response.status_code == 200, response.text
        else:  # a changed identifier (or a second value of one type) is refused; nothing changes
            assert response.status_code == 400 and self._codes(response) == {8013}, response.text


def test_capillary_state_machine(mock: MockServer) -> None:
    run_state_machine_as_test(
        lambda: CapillaryMachine(mock),
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
