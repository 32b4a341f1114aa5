"""The state changes of letstrade-channels without HTTP (mock_server/apis/letstrade_channels/crm.py):
channels, the webhook's admission order, customer and product upserts, sign-up."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.apis.letstrade.customers import CustomerStore
from mock_server.apis.letstrade.identity import Identity
from mock_server.apis.letstrade_channels import crm
from mock_server.apis.letstrade_channels.documents import PASSWORD_PLACEHOLDER, customer_document
from mock_server.apis.letstrade_channels.store import Channel, ChannelsStore
from mock_server.errors import Conflict, Forbidden, MockError, NotFound, Unauthorized, ValidationFailed

NOW = datetime(2025, 11, 12, 9, 12, 25, 693000, tzinfo=UTC)
LATER = NOW + timedelta(seconds=24)
SEED_CHANNEL: dict[str, Any] = {
    "type": "customer_webhook",
    "channel_type": "customer",
    "status": "ACTIVE",
    "permissions": {
        "products": {"read": False, "write": False},
        "orders": {"read": False, "write": False},
        "customers": {"read": True, "write": True},
    },
    "custom_field_schema": [
        {"name": "email", "type": "email", "required": False},
        {"name": "first_name", "type": "string", "required": False},
        {"name": "last_name", "type": "string", "required": False},
        {"name": "cell_number", "type": "phone", "required": False},
        {"name": "tier", "type": "string", "required": False},
    ],
}


def make_store() -> ChannelsStore:
    ident = Identity(0)
    return ChannelsStore(ident, CustomerStore(ident.new_object_id, client_id=ident.client_id), random.Random(1))


def channel_of(store: ChannelsStore, **changes: Any) -> tuple[Channel, str]:
    body = {**copy.deepcopy(SEED_CHANNEL), **changes}
    return crm.create_channel(store, store.identity.client_id, body, NOW)


def upsert(store: ChannelsStore, channel: Channel, payload: dict[str, Any], now: datetime = NOW) -> Any:
    crm.check_webhook_payload(channel, payload)
    return crm.upsert_customer(store, channel, payload, now)


def snapshot(store: ChannelsStore) -> list[dict[str, Any]]:
    return [customer_document(c, store.profile(c.id), registered=store.is_registered(c.id)) for c in store.customers]


# -- channels -----------------------------------------------------------------------------------
def test_a_channel_keeps_only_the_hash_of_its_key() -> None:
    store = make_store()
    channel, key = channel_of(store)
    assert len(key) == 32 and int(key, 16) >= 0
    assert key not in repr(channel)
    assert channel.key_matches(key) and not channel.key_matches(key.upper()) and not channel.key_matches("")


def test_a_refused_definition_creates_nothing() -> None:
    store = make_store()
    with pytest.raises(ValidationFailed) as refused:
        channel_of(store, custom_field_schema=[{"name": "first_name", "type": "string", "required": True}])
    assert [e.field for e in refused.value.fields] == ["custom_field_schema"]
    assert len(store) == 0


def test_update_changes_only_what_is_sent_and_refuses_immutable_changes() -> None:
    store = make_store()
    channel, _ = channel_of(store)
    crm.update_channel(channel, {"status": "INACTIVE", "channel_type": "customer", "type": "customer_webhook"}, LATER)
    assert (channel.status, channel.updated_at, len(channel.fields)) == ("INACTIVE", LATER, 5)
    before = copy.deepcopy(channel)
    with pytest.raises(ValidationFailed) as refused:
        crm.update_channel(
            channel,
            {
                "status": "ACTIVE",
                "channel_type": "product",
                "custom_field_schema": [{"name": "x", "type": "string", "required": True}],
            },
            LATER,
        )
    assert {e.field for e in refused.value.fields} == {"channel_type", "custom_field_schema"}
    assert channel == before


def test_rotating_a_key_retires_the_old_one() -> None:
    store = make_store()
    channel, old = channel_of(store)
    new = store.rotate_key(channel, LATER)
    assert new != old and channel.key_matches(new) and not channel.key_matches(old)


# -- webhook admission ----------------------------------------------------------------------------
def test_admission_order_404_then_401_then_403() -> None:
    store = make_store()
    channel, key = channel_of(store)
    other, other_key = channel_of(store)
    with pytest.raises(NotFound):
        crm.admit_webhook(store, "db06990c-d70e-4c93-8cce-ef2737d2cacd", key, "customers")
    with pytest.raises(Unauthorized):
        crm.admit_webhook(store, channel.webhook_uuid, other_key, "customers")
    assert crm.admit_webhook(store, channel.webhook_uuid.upper(), key, "customers") is channel
    with pytest.raises(Forbidden, match="customer channel"):  # a customer channel takes no products
        crm.admit_webhook(store, channel.webhook_uuid, key, "products")
    crm.update_channel(
        channel, {"permissions": {**SEED_CHANNEL["permissions"], "customers": {"read": True, "write": False}}}, NOW
    )
    with pytest.raises(Forbidden, match=r"customers\.write"):
        crm.admit_webhook(store, channel.webhook_uuid, key, "customers")
    crm.update_channel(channel, {"status": "INACTIVE"}, NOW)
    with pytest.raises(Forbidden, match="INACTIVE"):
        crm.admit_webhook(store, channel.webhook_uuid, key, "customers")
    with pytest.raises(Unauthorized):  # the key is checked before the status
        crm.admit_webhook(store, channel.webhook_uuid, other_key, "customers")
    assert crm.admit_webhook(store, other.webhook_uuid, other_key, "customers") is other


# -- customer upserts -----------------------------------------------------------------------------
def test_the_seed_sample_upsert_then_an_update() -> None:
    store = make_store()
    channel, _ = channel_of(store)
    sample = {"email": "john.doe@example.com", "first_name": "John", "last_name": "Doe", "cell_number": "+27721234565"}
    created = upsert(store, channel, sample)
    document = customer_document(created, store.profile(created.id), registered=False)
    assert (document["cell_number"], document["cell_country_code"]) == ("27721234565", "+27")
    assert (document["name"], document["surname"], document["imported"]) == ("John", "Doe", True)
    assert document["channels"] == [
        {"channel_id": channel.id, "channel": "CUSTOMER_WEBHOOK", "name": "customer_webhook"}
    ]
    assert document["password"] == PASSWORD_PLACEHOLDER and document["needs_password_change"] is True
    assert document["createdAt"] == "2025-11-12T09:12:25.693Z"
    updated = upsert(store, channel, {"email": "JOHN.DOE@example.com", "last_name": "Doe-Smith", "tier": "gold"}, LATER)
    assert updated.id == created.id and len(store.customers) == 1
    document = customer_document(updated, store.profile(updated.id), registered=False)
    assert (document["name"], document["surname"]) == ("John", "Doe-Smith")  # only what was sent changed
    assert document["extra_data"] == [{"name": "tier", "value": "gold"}]
    assert document["createdAt"] == "2025-11-12T09:12:25.693Z" and document["updatedAt"] == "2025-11-12T09:12:49.693Z"
    assert len(document["channels"]) == 1


def test_matching_is_by_email_first_then_by_cell_number() -> None:
    store = make_store()
    channel, _ = channel_of(store)
    by_cell = upsert(store, channel, {"cell_number": "+27721234565", "first_name": "Cell"})
    by_email = upsert(store, channel, {"email": "ann@example.com", "first_name": "Mail"})
    # a national-format number matches the same digits only; with an e-mail that matches, email wins
    again = upsert(store, channel, {"email": "ann@example.com", "first_name": "Mail2"})
    assert again.id == by_email.id
    found = upsert(store, channel, {"cell_number": "27721234565", "email": "new@example.com"})
    assert found.id == by_cell.id and found.email == "new@example.com" and found.cell_country_code == "+27"
    assert len(store.customers) == 2


def test_identifiers_of_two_customers_conflict_and_change_nothing() -> None:
    store = make_store()
    channel, _ = channel_of(store)
    upsert(store, channel, {"email": "ann@example.com"})
    upsert(store, channel, {"cell_number": "+27721234565"})
    before = snapshot(store)
    with pytest.raises(Conflict) as refused:
        upsert(store, channel, {"email": "ann@example.com", "cell_number": "+27 72 123 4565", "first_name": "X"}, LATER)
    assert [e.field for e in refused.value.fields] == ["cell_number"]
    assert snapshot(store) == before


def test_a_second_channel_adds_its_membership_once() -> None:
    store = make_store()
    first, _ = channel_of(store)
    second, _ = channel_of(store, type="loyalty_partner")
    upsert(store, first, {"email": "ann@example.com"})
    upsert(store, second, {"email": "ann@example.com"})
    customer = upsert(store, second, {"email": "ann@example.com"})
    assert [m["channel_id"] for m in customer.channels] == [first.id, second.id]
    assert customer.channels[1]["channel"] == "LOYALTY_PARTNER"


@settings(max_examples=60)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["email", "cell", "both"]), st.text(max_size=5)), max_size=40)
)
def test_upserts_never_duplicate_a_person(steps: list[tuple[int, str, str]]) -> None:
    """People keyed by e-mail and cell number, upserted in any order with either or both: once a
    person was first sent with both identifiers, there is one customer per person, holding the last
    name sent."""
    store = make_store()
    channel, _ = channel_of(store)
    last_name: dict[int, str] = {}
    for person, _ in {(p, 0) for p, _, _ in steps}:  # everybody is first sent with both
        upsert(store, channel, {"email": f"p{person}@example.com", "cell_number": f"+2772000000{person}"})
    for person, which, name in steps:
        payload: dict[str, Any] = {"first_name": name}
        if which in ("email", "both"):
            payload["email"] = f"P{person}@Example.com"
        if which in ("cell", "both"):
            payload["cell_number"] = f"+27 72 000 000{person}"
        upsert(store, channel, payload)
        last_name[person] = name
    people = {p for p, _, _ in steps}
    assert len(store.customers) == len(people)
    for person in people:
        customer = store.customers.find_by_email(f"p{person}@example.com")
        assert customer is not None and customer is store.customers.find_by_cell(f"+2772000000{person}")
        assert customer.name == last_name[person]


# -- product upserts ----------------------------------------------------------------------------
def test_products_are_matched_by_sku() -> None:
    store = make_store()
    channel, key = channel_of(
        store,
        type="product_webhook",
        channel_type="product",
        permissions={**SEED_CHANNEL["permissions"], "products": {"read": True, "write": True}},
        custom_field_schema=[
            {"name": "sku", "type": "string", "required": True},
            {"name": "title", "type": "string", "required": False},
            {"name": "price", "type": "number", "required": False},
        ],
    )
    assert crm.admit_webhook(store, channel.webhook_uuid, key, "products") is channel
    first = crm.upsert_product(store, channel, crm.check_webhook_payload(channel, {"sku": "A-1", "title": "Mug"}), NOW)
    second = crm.upsert_product(store, channel, crm.check_webhook_payload(channel, {"sku": "A-1", "price": 9.5}), LATER)
    assert first is second and len(store.products) == 1
    assert (second.title, second.attributes, second.created_at, second.updated_at) == (
        "Mug",
        {"price": 9.5},
        NOW,
        LATER,
    )
    with pytest.raises(ValidationFailed, match="sku"):
        crm.check_webhook_payload(channel, {"title": "no sku"})


# -- sign-up ------------------------------------------------------------------------------------
def test_sign_up_creates_a_user_and_a_customer_with_one_id() -> None:
    store = make_store()
    user, token = crm.sign_up(
        store, {"email": "ann@example.com", "password": "pw", "name": "Ann", "cell_number": "+27721234565"}, NOW
    )
    assert store.identity.user_for_token(token) is user
    assert store.identity.sign_in("ann@example.com", "pw") is not None
    customer = store.customers.get(user.id)
    assert customer is not None and customer.cell_number == "27721234565" and not customer.imported
    document = customer_document(customer, store.profile(customer.id), registered=store.is_registered(customer.id))
    assert document["needs_password_change"] is False and document["agrees_terms_and_conditions"] is False


def test_sign_up_claims_an_imported_customer() -> None:
    store = make_store()
    channel, _ = channel_of(store)
    imported = upsert(store, channel, {"cell_number": "+27721234565", "first_name": "Ann", "last_name": "Lee"})
    user, _ = crm.sign_up(
        store, {"email": "ann@example.com", "password": "pw", "name": "Annie", "cell_number": "+27 72 123 4565"}, LATER
    )
    assert user.id == imported.id and len(store.customers) == 1
    assert (imported.email, imported.name, imported.surname) == ("ann@example.com", "Annie", "Lee")


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({"email": "taken@example.com"}, Conflict, "email"),
        ({"email": "TAKEN@example.com"}, Conflict, "email"),
        ({"email": "free@example.com", "cell_number": "+27720000001"}, Conflict, "cell_number"),  # the user's cell
        ({"email": "other@example.com", "cell_number": "+27720000002"}, Conflict, "cell_number"),  # two customers
        ({"email": "free@example.com", "cell_number": "12"}, ValidationFailed, "cell_number"),
        ({"email": "free@example"}, ValidationFailed, "email"),
    ],
)
def test_sign_up_refusals_change_nothing(body: dict[str, Any], error: type[MockError], field: str) -> None:
    store = make_store()
    channel, _ = channel_of(store)
    crm.sign_up(
        store, {"email": "taken@example.com", "password": "pw", "name": "T", "cell_number": "+27720000001"}, NOW
    )
    upsert(store, channel, {"email": "other@example.com"})
    upsert(store, channel, {"cell_number": "+27720000002"})
    before, users = snapshot(store), dict(store.identity.users)
    with pytest.raises(error) as refused:
        crm.sign_up(store, {"password": "pw", "name": "N", **body}, LATER)
    assert [e.field for e in refused.value.fields] == [field]
    assert snapshot(store) == before and store.identity.users == users


def test_a_channel_cannot_change_the_email_of_a_customer_who_signed_up() -> None:
    store = make_store()
    channel, _ = channel_of(store)
    user, _ = crm.sign_up(
        store, {"email": "ann@example.com", "password": "pw", "name": "Ann", "cell_number": "+27721234565"}, NOW
    )
    before = snapshot(store)
    with pytest.raises(Conflict) as refused:
        upsert(store, channel, {"cell_number": "+27721234565", "email": "someone.else@example.com"}, LATER)
    assert [e.field for e in refused.value.fields] == ["email"] and snapshot(store) == before
    same = upsert(store, channel, {"cell_number": "+27721234565", "email": "ANN@example.com", "tier": "gold"}, LATER)
    assert same.id == user.id and store.identity.sign_in("ann@example.com", "pw") is not None
