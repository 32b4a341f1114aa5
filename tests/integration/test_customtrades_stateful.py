"""A hypothesis state machine drives Custom Trades over HTTP (create, update, delete, get, list,
search, with both companies' keys and a moving clock) and checks every answer against a model
kept here: a list of customers and a plain reading of the documented rules."""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from mock_server.testing import MockServer

COMPANIES = ("customtrades", "customtrades_second_company")
FIRST = ["Ann", "anna", "Bob", "Ölaf", "Mary Jane", "Jo-Ann"]
LAST = ["Lee", "O'Brien", "Leeds", "Straße", "van Dyke"]
EMAILS = ["ann@x.io", "Ann.Lee@X.io", "bob@y.com", "bo@y.com"]
PHONES = ["206-555-1234", "206-555-9999", "425-000-0000"]
TERMS = ["a", "ann", "ANN L", "lee", "o'b", "strass", "van d", "ann@", "bo", "206", "206-555-9", "4250", "zz", " "]
ATTRIBUTES = (
    "company_name", "email", "phone", "customer_type", "is_vip", "physical_address1", "physical_address2",
    "physical_city", "physical_state", "physical_zip", "billing_address1", "billing_address2", "billing_city",
    "billing_state", "billing_zip", "primary_service_location_uuid", "notes", "internal_flags",
    "on_my_way_notify_via",
)
DEFAULTS: dict[str, Any] = {name: None for name in ATTRIBUTES} | {"customer_type": "Residential", "is_vip": False}

changes = st.fixed_dictionaries(
    {},
    optional={
        "first_name": st.sampled_from(FIRST),
        "last_name": st.sampled_from(LAST),
        "email": st.none() | st.sampled_from(EMAILS),
        "phone": st.none() | st.sampled_from(PHONES),
        "customer_type": st.sampled_from(["Residential", "Commercial"]),
        "is_vip": st.booleans(),
        "notes": st.none() | st.text(max_size=5),
        "billing_city": st.none() | st.sampled_from(["Seattle", "Tacoma"]),
        "internal_flags": st.none() | st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2),
        "on_my_way_notify_via": st.sampled_from([None, "email", "sms", "both"]),
    },
)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def model_matches(customer: dict[str, Any], term: str) -> bool:
    """The search rule as the spec words it, read plainly."""
    text = term.strip().casefold()
    if not text:
        return True
    own = _words(customer["first_name"]) + _words(customer["last_name"])
    terms = _words(text)
    if terms and all(any(word.startswith(t) for word in own) for t in terms):
        return True
    if customer["email"] is not None and customer["email"].casefold().startswith(text):
        return True
    if customer["phone"] is not None and re.fullmatch(r"[0-9\s().\-]+", text):
        digits = re.sub(r"[^0-9]", "", text)
        if digits and customer["phone"].replace("-", "").startswith(digits):
            return True
    return bool(customer["uuid"] == text)


class CustomersMachine(RuleBasedStateMachine):
    server: ClassVar[MockServer]
    uuids = Bundle("uuids")

    def __init__(self) -> None:
        super().__init__()
        self.server.reset()
        credentials = self.server.credentials_cache()
        self.headers = {c: {"Authorization": f"Bearer {credentials[c]['api_key']}"} for c in COMPANIES}
        self.model: list[dict[str, Any]] = []  # creation order; each with its "_company"
        self.url = self.server.url("customtrades", "/v1/customers")
        self.history: list[str] = []  # searchable values ever sent, so stale index entries show

    def _remember(self, values: dict[str, Any]) -> None:
        for name in ("first_name", "last_name", "email", "phone", "uuid"):
            if values.get(name) is not None and values[name] not in self.history:
                self.history.append(values[name])

    # helpers
    def _call(self, method: str, company: str, path: str = "", **kwargs: Any) -> requests.Response:
        return self.server.session.request(method, self.url + path, headers=self.headers[company], timeout=30,
                                           **kwargs)

    def _find(self, uuid: str) -> dict[str, Any]:
        return next(c for c in self.model if c["uuid"] == uuid)

    @staticmethod
    def _public(customer: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in customer.items() if not k.startswith("_")}

    def _visible(self, customer: dict[str, Any], company: str) -> bool:
        return customer["_company"] == company and customer["deleted_at"] is None

    def _expect_404(self, response: requests.Response) -> None:
        assert response.status_code == 404, response.text
        assert response.json()["success"] is False

    # rules
    @rule(target=uuids, company=st.sampled_from(COMPANIES), first=st.sampled_from(FIRST),
          last=st.sampled_from(LAST), values=changes)
    def create(self, company: str, first: str, last: str, values: dict[str, Any]) -> str:
        body = {**values, "first_name": first, "last_name": last}
        response = self._call("POST", company, json=body)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data == {**DEFAULTS, **body, "uuid": data["uuid"], "created_at": data["created_at"],
                        "updated_at": data["created_at"], "deleted_at": None}
        assert all(data["uuid"] != c["uuid"] for c in self.model)
        self.model.append({**data, "_company": company})
        self._remember(data)
        return str(data["uuid"])

    def _caller(self, customer: dict[str, Any], foreign: int) -> str:
        """The owner's key three times in four, else the other company's (which must get 404s)."""
        owner = str(customer["_company"])
        return owner if foreign else next(c for c in COMPANIES if c != owner)

    @rule(uuid=uuids, foreign=st.integers(0, 3), values=changes)
    def update(self, uuid: str, foreign: int, values: dict[str, Any]) -> None:
        customer = self._find(uuid)
        company = self._caller(customer, foreign)
        response = self._call("PUT", company, f"/{uuid}", json=values)
        if not self._visible(customer, company):
            self._expect_404(response)
            return
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["updated_at"] >= customer["updated_at"]
        customer.update(values, updated_at=data["updated_at"])
        self._remember(values)
        assert data == self._public(customer)

    @rule(uuid=uuids, foreign=st.integers(0, 3))
    def delete(self, uuid: str, foreign: int) -> None:
        customer = self._find(uuid)
        company = self._caller(customer, foreign)
        response = self._call("DELETE", company, f"/{uuid}")
        if not self._visible(customer, company):
            self._expect_404(response)
            return
        assert response.status_code == 200, response.text
        listed = self._call("GET", company, params={"include_deleted": "true", "search": uuid}).json()
        data = listed["data"]["customers"][0]
        assert data["deleted_at"] is not None and data["deleted_at"] == data["updated_at"]
        customer.update(deleted_at=data["deleted_at"], updated_at=data["updated_at"])

    @rule(uuid=uuids, foreign=st.integers(0, 3))
    def get(self, uuid: str, foreign: int) -> None:
        customer = self._find(uuid)
        company = self._caller(customer, foreign)
        response = self._call("GET", company, f"/{uuid.upper()}")
        if not self._visible(customer, company):
            self._expect_404(response)
        else:
            assert response.json()["data"] == self._public(customer)

    @rule(company=st.sampled_from(COMPANIES), filter_name=st.sampled_from(["all", "residential", "commercial", "vip"]),
          include_deleted=st.booleans(), page=st.integers(1, 4), limit=st.integers(1, 5),
          term=st.none() | st.sampled_from(TERMS) | st.text(max_size=3), data=st.data())
    def list_and_search(self, company: str, filter_name: str, include_deleted: bool, page: int, limit: int,
                        term: str | None, data: st.DataObject) -> None:
        source = data.draw(st.sampled_from(["given", "customer", "history"]), label="term source")
        if term is not None and source == "customer" and self.model:
            customer = data.draw(st.sampled_from(self.model))
            field = data.draw(st.sampled_from(["first_name", "last_name", "email", "phone", "uuid"]))
            value = customer[field] or "x"
            term = value[: data.draw(st.integers(1, len(value)))]
        elif term is not None and source == "history" and self.history:
            term = data.draw(st.sampled_from(self.history))
        params: dict[str, Any] = {"filter": filter_name, "include_deleted": str(include_deleted).lower(),
                                  "page": page, "limit": limit}
        if term is not None:
            params["search"] = term
        response = self._call("GET", company, params=params)
        assert response.status_code == 200, response.text
        expected = [
            c for c in reversed(self.model)
            if c["_company"] == company
            and (include_deleted or c["deleted_at"] is None)
            and (filter_name == "all"
                 or (filter_name == "vip" and c["is_vip"])
                 or c["customer_type"].lower() == filter_name)
            and (term is None or model_matches(c, term))
        ]
        body = response.json()["data"]
        start = (page - 1) * limit
        assert body["customers"] == [self._public(c) for c in expected[start : start + limit]]
        assert body["pagination"] == {"page": page, "limit": limit, "total": len(expected),
                                      "total_pages": -(-len(expected) // limit)}

    @rule()
    def search_every_remembered_value(self) -> None:
        """Every value ever stored (stale index entries would show), in every company, unfiltered."""
        for term in self.history:
            for company in COMPANIES:
                params = {"search": term, "include_deleted": "true", "limit": 100}
                found = self._call("GET", company, params=params).json()["data"]["customers"]
                expected = [c for c in reversed(self.model) if c["_company"] == company and model_matches(c, term)]
                assert [c["uuid"] for c in found] == [c["uuid"] for c in expected], term

    @rule(seconds=st.integers(1, 90_000))
    def advance_clock(self, seconds: int) -> None:
        self.server.advance(seconds)

    @invariant()
    def totals_agree(self) -> None:
        for company in COMPANIES:
            response = self._call("GET", company, params={"include_deleted": "true", "limit": 1})
            assert response.json()["data"]["pagination"]["total"] == sum(
                c["_company"] == company for c in self.model
            )


def test_customers_always_match_the_model(mock: MockServer) -> None:
    class Machine(CustomersMachine):
        server = mock

    ci = bool(os.environ.get("CI"))
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=25 if ci else 60,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
