"""LOKE as a state machine: webhook subscriptions upserted by ref, points adjusted and reversed
by reference, customer lists and their members, customers read, and (mock only) events made to
happen and delivered, signed, to a local receiver.

Properties (public docs unless marked): a webhook upsert with an existing ref replaces that
subscription (one per ref) and the secret is never returned; a deleted subscription is gone (not
listed, no longer delivered to); a points reference is used once per customer (409
duplicate_point_record), an award raises `pointsBalance` by its amount and a reversal takes it
back (once: the record is removed, a second reversal is 404); a list member added is listed and
a removed one is not; an event is delivered to every matching subscription as a POST whose
`X-Event-Signature` is the HMAC-SHA256 of the raw body with the subscription's secret. On a
vendor without --allow-irreversible only the reading steps run. An organization that did not
install the add-on (the mock's `not_installed_organization_id`; on a vendor
`LCS_LOKE_NOT_INSTALLED_ORGANIZATION_ID`, else the step is counted as needing it) is answered 403
`forbidden` on an organization-scoped call and is not listed by `GET /organizations` (assumed:
the public docs say a token reaches the organizations that installed the add-on).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle

from contracts import data
from contracts.receivers import SIGNATURE_HEADER, LocalReceiver, sign
from contracts.report import Recorder
from contracts.stateful import IRREVERSIBLE, MOCK, Api, Machine, credential, start, step
from contracts.target import ApiContext

ORGS, ORG = "/organizations", "/organizations/{organizationId}"
CUSTOMERS, CUSTOMER = f"{ORG}/customers", f"{ORG}/customers/{{customerId}}"
POINTS = f"{ORG}/customers/{{customerId}}/points/{{reference}}"
WEBHOOKS, WEBHOOK = f"{ORG}/webhooks", f"{ORG}/webhooks/{{webhookRef}}"
LISTS, LIST = f"{ORG}/customer-lists", f"{ORG}/customer-lists/{{listId}}"
MEMBERS, MEMBER = f"{ORG}/customer-lists/{{listId}}/members", f"{ORG}/customer-lists/{{listId}}/members/{{customerId}}"
EVENTS = [
    "customer.created",
    "customer.updated",
    "customer.updated-statistics",
    "payment.completed",
    "payment.refunded",
]


def build(ctx: ApiContext, recorder: Recorder) -> type[Machine]:
    api = Api(ctx, recorder)
    index = api.index
    org = str((ctx.creds.get("loke") or {}).get("organization_id") or "")
    other = str((ctx.creds.get("loke") or {}).get("not_installed_organization_id") or "")
    NOT_INSTALLED = credential(
        "an organization that did not install the add-on (LCS_LOKE_NOT_INSTALLED_ORGANIZATION_ID)",
        lambda _: bool(other),
    )

    def path(template: str, **values: str) -> str:
        return template.replace("{organizationId}", org).format(**values)

    def balance(customer: str) -> int:
        response = api.call("GET", CUSTOMER, path(CUSTOMER, customerId=customer))
        api.expect(response, {200}, "get_customer", f"GET {CUSTOMER}", index.operation("GET", CUSTOMER))
        return int(response.json()["statistics"]["pointsBalance"])

    class Loke(Machine):
        customers = Bundle("customers")
        lists = Bundle("lists")

        def __init__(self) -> None:
            super().__init__()
            ctx.fresh()
            self.webhooks: dict[str, tuple[str, list[str]]] = {}
            self.points: dict[tuple[str, str], int] = {}  # (customer, reference) -> amount, while not reversed
            self.members: dict[str, set[str]] = {}
            self.run = uuid.uuid4().hex[:8]  # a vendor (or shared mock) keeps what earlier runs made
            self.events = 0

        @start(target=customers)
        def first_page(self) -> Any:
            response = api.call("GET", CUSTOMERS, path(CUSTOMERS))
            api.expect(response, {200}, "list_customers", f"GET {CUSTOMERS}", index.operation("GET", CUSTOMERS))
            page = response.json()
            if page:
                first = page[0]
                got = api.call("GET", CUSTOMER, path(CUSTOMER, customerId=first["id"]))
                api.expect(got, {200}, "get_customer", f"GET {CUSTOMER}", index.operation("GET", CUSTOMER))
                if got.json().get("email") != first.get("email"):
                    raise api.violation(
                        "customer_reads_agree",
                        f"GET {CUSTOMER}",
                        "getCustomer and listCustomers disagree about the e-mail",
                        index.operation("GET", CUSTOMER),
                    )
                return str(first["id"])
            return None

        @step(NOT_INSTALLED)
        def not_installed_unreachable(self) -> None:
            """An organization that did not install the add-on: every organization-scoped call
            is the documented 403 `forbidden`, and `GET /organizations` does not list it."""
            for template, at in ((ORG, f"/organizations/{other}"), (CUSTOMERS, f"/organizations/{other}/customers")):
                response = api.call("GET", template, at)
                api.expect(
                    response,
                    {403},
                    "not_installed_unreachable",
                    f"GET {template} of an organization that did not install the add-on",
                    index.response("GET", template, 403),
                )
                if response.json().get("type") != "forbidden":
                    raise api.violation(
                        "not_installed_unreachable",
                        f"GET {template}",
                        f"the 403 for an organization that did not install the add-on has type "
                        f"{response.json().get('type')!r}, not 'forbidden'",
                        index.response("GET", template, 403),
                    )
            listed: list[str] = []
            url: str | None = None
            for _ in range(50):  # pages of up to 1000 organizations
                response = api.call("GET", ORGS, url=url) if url else api.call("GET", ORGS)
                api.expect(response, {200}, "list_organizations", f"GET {ORGS}", index.operation("GET", ORGS))
                listed += [str(o.get("id")) for o in response.json()]
                url = response.headers.get("X-Next-Page")
                if not url:
                    break
            if other in listed:
                raise api.violation(
                    "not_installed_unreachable",
                    f"GET {ORGS}",
                    f"the organization {other}, which did not install the add-on, is listed",
                    index.operation("GET", ORGS),
                )

        @step(
            IRREVERSIBLE,
            ref=st.sampled_from(["crm-a", "crm-b"]),
            events=st.lists(st.sampled_from(EVENTS), min_size=1, unique=True),
            seed=st.integers(),
        )
        def upsert_webhook(self, ref: str, events: list[str], seed: int) -> None:
            ref = f"lcs-{self.run}-{ref}"
            url = f"{data.DISCARD_URL}/{seed % 1000}"
            secret = data.seeded(random.Random(seed)).password(length=24, special_chars=False)
            response = api.call(
                "PUT", WEBHOOK, path(WEBHOOK, webhookRef=ref), json={"events": events, "secret": secret, "url": url}
            )
            api.expect(response, {200}, "upsert_webhook", f"PUT {WEBHOOK}", index.operation("PUT", WEBHOOK))
            if secret in response.text:
                raise api.violation(
                    "no_secret_echo",
                    f"PUT {WEBHOOK}",
                    "the subscription's secret was returned",
                    index.response("PUT", WEBHOOK, 200),
                )
            self.webhooks[ref] = (url, sorted(events))

        @step()
        def list_webhooks(self) -> None:
            response = api.call("GET", WEBHOOKS, path(WEBHOOKS))
            api.expect(response, {200}, "list_webhooks", f"GET {WEBHOOKS}", index.operation("GET", WEBHOOKS))
            listed = [w for w in response.json() if str(w.get("ref", "")).startswith(f"lcs-{self.run}-")]
            refs = [w["ref"] for w in listed]
            if len(refs) != len(set(refs)) or set(refs) != set(self.webhooks):
                raise api.violation(
                    "webhook_upsert_by_ref",
                    f"GET {WEBHOOKS}",
                    f"subscriptions listed for this run's refs: {sorted(refs)}; upserted and not deleted: "
                    f"{sorted(self.webhooks)} (an upsert by ref keeps one subscription per ref)",
                    index.operation("PUT", WEBHOOK),
                )
            for hook in listed:
                url, events = self.webhooks[hook["ref"]]
                if hook.get("url") != url or sorted(hook.get("events") or []) != events or "secret" in hook:
                    raise api.violation(
                        "webhook_upsert_by_ref",
                        f"GET {WEBHOOKS}",
                        f"subscription {hook['ref']} is {json.dumps(hook)[:200]}; the last upsert set url {url} "
                        f"and events {events} (and the secret is never returned)",
                        index.operation("PUT", WEBHOOK),
                    )

        @step(IRREVERSIBLE, when=lambda self: bool(self.webhooks), seed=st.integers())
        def delete_webhook(self, seed: int) -> None:
            ref = random.Random(seed).choice(sorted(self.webhooks))
            response = api.call("DELETE", WEBHOOK, path(WEBHOOK, webhookRef=ref))
            api.expect(response, {204}, "delete_webhook", f"DELETE {WEBHOOK}", index.operation("DELETE", WEBHOOK))
            del self.webhooks[ref]
            again = api.call("DELETE", WEBHOOK, path(WEBHOOK, webhookRef=ref))
            api.expect(
                again, {404}, "delete_webhook", f"DELETE {WEBHOOK} twice", index.response("DELETE", WEBHOOK, 404)
            )

        @step(IRREVERSIBLE, customer=customers, amount=st.integers(1, 500), seed=st.integers())
        def adjust_points(self, customer: str | None, amount: int, seed: int) -> None:
            if customer is None:
                return
            reference = f"lcs-{self.run}-{seed}"
            if (customer, reference) in self.points:
                return
            before = balance(customer)
            points = path(POINTS, customerId=customer, reference=reference)
            response = api.call("PUT", POINTS, points, json={"amount": amount, "notes": "lcs contract suite"})
            api.expect(response, {204}, "adjust_points", f"PUT {POINTS}", index.operation("PUT", POINTS))
            after = balance(customer)
            if after != before + amount:
                raise api.violation(
                    "points_change_the_balance",
                    f"PUT {POINTS}",
                    f"awarding {amount} points moved pointsBalance from {before} to {after}",
                    index.operation("PUT", POINTS),
                )
            again = api.call("PUT", POINTS, points, json={"amount": amount})
            if again.status_code != 409 or again.json().get("type") != "duplicate_point_record":
                raise api.violation(
                    "points_reference_single_use",
                    f"PUT {POINTS}",
                    f"reusing reference {reference} answered {again.status_code} {again.text[:200]}",
                    index.response("PUT", POINTS, 409),
                )
            self.points[(customer, reference)] = amount

        @step(IRREVERSIBLE, when=lambda self: bool(self.points), seed=st.integers())
        def reverse_points(self, seed: int) -> None:
            customer, reference = random.Random(seed).choice(sorted(self.points))
            before = balance(customer)
            response = api.call("DELETE", POINTS, path(POINTS, customerId=customer, reference=reference))
            api.expect(response, {204}, "reverse_points", f"DELETE {POINTS}", index.operation("DELETE", POINTS))
            amount = self.points.pop((customer, reference))
            after = balance(customer)
            if after != before - amount:
                raise api.violation(
                    "points_reversal",
                    f"DELETE {POINTS}",
                    f"reversing {amount} points moved pointsBalance from {before} to {after}",
                    index.operation("DELETE", POINTS),
                )
            again = api.call("DELETE", POINTS, path(POINTS, customerId=customer, reference=reference))
            api.expect(
                again,
                {404},
                "points_reversal_once",
                f"DELETE {POINTS} of a record already reversed",
                index.operation("DELETE", POINTS),
            )

        @step(IRREVERSIBLE, target=lists, seed=st.integers())
        def create_list(self, seed: int) -> str:
            name = f"lcs {self.run} {data.seeded(random.Random(seed)).catch_phrase()}"
            response = api.call("POST", LISTS, path(LISTS), json={"name": name})
            api.expect(response, {201}, "create_list", f"POST {LISTS}", index.operation("POST", LISTS))
            created = response.json()
            if created.get("name") != name or created.get("memberCount") != 0:
                raise api.violation(
                    "create_list",
                    f"POST {LISTS}",
                    f"created list is {json.dumps(created)[:200]}",
                    index.operation("POST", LISTS),
                )
            self.members[created["id"]] = set()
            return str(created["id"])

        def _check_members(self, list_id: str) -> None:
            response = api.call("GET", MEMBERS, path(MEMBERS, listId=list_id))
            api.expect(response, {200}, "list_members", f"GET {MEMBERS}", index.operation("GET", MEMBERS))
            listed = {m["id"] for m in response.json()}
            if listed != self.members[list_id]:
                raise api.violation(
                    "list_membership",
                    f"GET {MEMBERS}",
                    f"members are {sorted(listed)}; added and not removed: {sorted(self.members[list_id])}",
                    index.operation("GET", MEMBERS),
                )
            got = api.call("GET", LIST, path(LIST, listId=list_id))
            api.expect(got, {200}, "get_list", f"GET {LIST}", index.operation("GET", LIST))
            if got.json().get("memberCount") != len(listed):
                raise api.violation(
                    "list_membership",
                    f"GET {LIST}",
                    f"memberCount is {got.json().get('memberCount')} with {len(listed)} members listed",
                    index.operation("GET", LIST),
                )

        @step(IRREVERSIBLE, list_id=lists, customer=customers, add=st.booleans())
        def membership(self, list_id: str, customer: str | None, add: bool) -> None:
            if customer is None:
                return
            method = "PUT" if add else "DELETE"
            response = api.call(method, MEMBER, path(MEMBER, listId=list_id, customerId=customer))
            expected = {204} if add or customer in self.members[list_id] else {204, 404}
            api.expect(response, expected, "list_membership", f"{method} {MEMBER}", index.operation(method, MEMBER))
            (self.members[list_id].add if add else self.members[list_id].discard)(customer)
            self._check_members(list_id)

        @step(MOCK, IRREVERSIBLE, seed=st.integers())
        def event_delivered_signed(self, seed: int) -> None:
            """Mock only: a customer registers; a subscription at a local receiver gets it, signed.
            Then the subscription is deleted and another customer registers: a second subscription
            at the same receiver (a sentinel) gets that one, the deleted one nothing."""
            admin = ctx.require_admin("making a LOKE event happen")
            secret = f"lcs-secret-{seed % 10_000:04d}-{self.run}"
            ref, sentinel = f"lcs-{self.run}-delivery", f"lcs-{self.run}-sentinel"

            def emit() -> str:
                self.events += 1
                email = f"lcs.{self.run}.{self.events}.{seed % 10_000}@example.com"
                admin.emit_loke_event(
                    event="customer.created",
                    organization_id=org,
                    customer={"firstName": "Lcs", "lastName": self.run, "email": email},
                )
                return email

            def wait(received: list[Any], at_path: str, count: int) -> list[Any]:
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    found = [r for r in received if r[0] == at_path]
                    if len(found) >= count:
                        return found
                    time.sleep(0.02)
                return [r for r in received if r[0] == at_path]

            with LocalReceiver(lambda p, h, raw: (204, None)) as receiver:
                for hook, where in ((ref, "/loke"), (sentinel, "/sentinel")):
                    hooked = api.call(
                        "PUT",
                        WEBHOOK,
                        path(WEBHOOK, webhookRef=hook),
                        json={"events": ["customer.created"], "secret": secret, "url": f"{receiver.url}{where}"},
                    )
                    api.expect(hooked, {200}, "upsert_webhook", f"PUT {WEBHOOK}", index.operation("PUT", WEBHOOK))
                email = emit()
                delivered = wait(receiver.received, "/loke", 1)
                deleted = api.call("DELETE", WEBHOOK, path(WEBHOOK, webhookRef=ref))
                api.expect(deleted, {204}, "delete_webhook", f"DELETE {WEBHOOK}", index.operation("DELETE", WEBHOOK))
                wait(receiver.received, "/sentinel", 1)
                second = emit().encode()
                after = [r for r in wait(receiver.received, "/sentinel", 2) if second in r[2]]
                time.sleep(0.05)  # deliveries of one event go out together: give the deleted one its chance
                late = [r for r in receiver.received if r[0] == "/loke" and second in r[2]]
                api.call("DELETE", WEBHOOK, path(WEBHOOK, webhookRef=sentinel))
            if not delivered:
                raise api.violation(
                    "event_delivered",
                    "customer.created",
                    "no delivery reached the subscribed URL within 5 s",
                    index.operation("post", "customer.created"),
                )
            if not after:
                raise api.violation(
                    "event_delivered",
                    "customer.created",
                    "a second event reached no subscribed URL within 5 s",
                    index.operation("post", "customer.created"),
                )
            if late:
                raise api.violation(
                    "deleted_subscription_not_delivered",
                    f"DELETE {WEBHOOK}",
                    f"an event made after the subscription {ref} was deleted (204) was still delivered to its URL",
                    index.operation("DELETE", WEBHOOK),
                )
            _, headers, raw = delivered[0]
            signature = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER.lower())
            if signature != sign(raw, secret):
                raise api.violation(
                    "event_signed",
                    "customer.created",
                    f"{SIGNATURE_HEADER} is {signature!r}, not the HMAC-SHA256 of the body with the secret",
                    index.parameter("post", "customer.created", "header", SIGNATURE_HEADER),
                )
            payload = json.loads(raw)
            if payload.get("event") != "customer.created" or payload.get("customer", {}).get("email") != email:
                raise api.violation(
                    "event_payload",
                    "customer.created",
                    f"delivered {raw[:200]!r}",
                    index.operation("post", "customer.created"),
                )

        def tour(self) -> None:
            """Every rule: a subscription upserted, replaced by ref, listed, deleted (twice);
            points awarded (twice per reference: 409) and one award reversed; a list member
            added, removed, removed again; an event delivered, signed; an organization that did not
            install the add-on refused (403) and unlisted."""
            customer = self.go("first_page")
            self.go("not_installed_unreachable")
            self.go("list_webhooks")
            self.go("upsert_webhook", ref="crm-a", events=["customer.created"], seed=1)
            self.go("upsert_webhook", ref="crm-a", events=["payment.completed", "customer.updated"], seed=2)
            self.go("upsert_webhook", ref="crm-b", events=["payment.refunded"], seed=3)
            self.go("list_webhooks")
            self.go("delete_webhook", seed=4)
            self.go("list_webhooks")
            self.go("adjust_points", customer=customer, amount=25, seed=5)
            self.go("adjust_points", customer=customer, amount=40, seed=6)
            self.go("reverse_points", seed=7)
            members = self.go("create_list", seed=8)
            self.go("membership", list_id=members, customer=customer, add=True)
            self.go("membership", list_id=members, customer=customer, add=False)
            self.go("membership", list_id=members, customer=customer, add=False)
            self.go("event_delivered_signed", seed=9)

    Loke.bind(api)
    return Loke
