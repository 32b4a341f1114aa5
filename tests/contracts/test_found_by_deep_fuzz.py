"""What the thorough contract run (`pytest contracts --profile thorough`, issue 11) found in the
suite's own machinery, replayed step by step against the in-process mock so it stays fixed.
(The mock bug it found, a 400 for a POS e-mail conflict, is pinned in
tests/integration/test_letstrade_pos_flow.py.)"""

from __future__ import annotations

import random

import pytest

from contracts import data, options
from contracts.report import Recorder
from contracts.stateful import capillary
from contracts.suite import build_schema, prepare
from contracts.target import ApiContext

MEMBER = "/organizations/{organizationId}/customer-lists/{listId}/members/{customerId}"


@pytest.mark.lcs_api("capillary", "stateful")
def test_capillary_model_keeps_one_first_name_across_source_accounts(
    lcs_context: ApiContext, lcs_recorder: Recorder
) -> None:
    """The falsifying example: register, rename, register the same identifiers in a source that
    sorts first, look up in that source. The model used to send the registration's old name to the
    new source account and then expect the new one back."""
    machine = capillary.build(lcs_context, lcs_recorder)()
    customer = machine.register(seed=0, source="INSTORE")
    machine.update_names(customer=customer, seed=0)
    machine.register_in_another_source(customer=customer, source="ECOMMERCE")
    for kind in ("mobile", "email"):
        machine.lookup(customer=customer, everywhere=False, kind=kind)  # raises ContractViolation if not
        machine.lookup(customer=customer, everywhere=True, kind=kind)
    assert customer.sources == {"INSTORE", "ECOMMERCE"}


@pytest.mark.lcs_api("loke", "links")
def test_a_linked_case_keeps_the_ids_its_link_gave_it(
    lcs_context: ApiContext, lcs_recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The links machine used to let `prepare` swap a seeded list and customer into a case whose
    ids came from a link; schemathesis counts every changed value as the link's, so its
    `ensure_resource_availability` check blamed the list the link's parent had just created."""
    operation = build_schema("loke", options.current())[MEMBER]["DELETE"]
    monkeypatch.setattr(data, "is_positive", lambda case: True)  # as a positive case of the fuzzer
    substituted = []
    for n in range(12):
        linked = {"organizationId": "org-from-link", "listId": f"L-from-link-{n}", "customerId": f"C-{n}"}
        case = operation.Case(path_parameters=dict(linked))
        prepare(lcs_context, case, substitute=False)
        assert case.path_parameters == linked
        prepare(lcs_context, case)  # a root case: may be pointed at the seeded organization's lists
        substituted.append(case.path_parameters["listId"] != linked["listId"])
    assert any(substituted), "root cases are never pointed at seeded lists: the comparison above proves nothing"


def _lookup_names() -> list[str]:
    spec = build_schema("capillary", options.current()).raw_schema
    lookup = spec["paths"]["/v2/customers/lookup/customerDetails"]["get"]
    return next(p["schema"]["enum"] for p in lookup["parameters"] if p["name"] == "identifierName")


def test_a_registration_puts_an_identifier_its_lookup_link_can_use_first() -> None:
    """The spec links a registration to a lookup by `profiles/0/identifiers/0`; lookups take fewer
    identifier types than registrations. The thorough run followed the link from a registration
    whose first identifier was a `martjackId`: a lookup the mock rightly refused (400)."""
    names = _lookup_names()
    mixed = {
        "profiles": [
            {
                "source": "INSTORE",
                "identifiers": [{"type": "martjackId", "value": "mj-1"}, {"type": "email", "value": "a@b.co"}],
            },
            {"source": "ECOMMERCE", "identifiers": [{"type": "wechat", "value": "w-1"}]},
        ]
    }
    data._capillary_rules(mixed, random.Random(1))
    first, second = mixed["profiles"]
    assert [i["type"] for i in first["identifiers"]] == ["email", "martjackId"]  # reordered, nothing lost
    assert [i["type"] for i in second["identifiers"]] == ["wechat"]  # only the first profile is linked
    exotic = {"profiles": [{"source": "WECHAT", "identifiers": [{"type": "wechat", "value": "w-2"}]}]}
    data._capillary_rules(exotic, random.Random(2))
    kinds = [i["type"] for i in exotic["profiles"][0]["identifiers"]]
    assert kinds[0] in names and kinds[1:] == ["wechat"]
