"""LOKE (`loke`): the event source a CRM integration is tested against.

- OAuth2 client credentials (`POST /auth/token`): one client token reaches every organization that
  installed the add-on; an organization that did not is answered 403, an unknown one 404.
- OpenID Connect discovery of the issuer `<base URL>/auth` (`/auth/.well-known/openid-configuration`,
  `/auth/jwks`), built from the request so published OIDC clients find the token endpoint.
- The organizations that installed the add-on (`GET /organizations`) and their locations.
- Customers with LOKE's `X-Next-Page` keyset cursor (`paging.py`), points, payments, customer lists.
- Webhook subscriptions upserted by ref; events (`events.py`, made to happen through
  `POST /__admin/loke/events`) change the state and are POSTed to every matching subscription,
  signed (`signing.py`), retried on the virtual clock (`delivery.py`, `outbound.py`), with
  per-subscription fault modes (delay, duplicate, out of order).

Modules: `store.py` (state), `ids.py`, `paging.py`, `signing.py`, `delivery.py`, `events.py`,
`views.py`, `fixtures.py`, `seed.py` (pure), `outbound.py` (HTTP out), `handlers.py` (HTTP in).
"""

from __future__ import annotations

from typing import Any

from mock_server.apis.base import ApiDefinition, Credential, Handler, Services
from mock_server.apis.loke import fixtures, seed
from mock_server.apis.loke import handlers as h
from mock_server.apis.loke.store import LokeStore
from mock_server.errors import FieldError


class LokeApi(ApiDefinition[LokeStore]):
    slug = "loke"
    spec_name = "loke"
    envelope = "loke"
    fixture_section = "loke"
    handlers: dict[str, Handler] = {
        "getToken": h.get_token,
        "getOpenIdConfiguration": h.openid_configuration,
        "getJwks": h.jwks,
        "listOrganizations": h.list_organizations,
        "getOrganization": h.get_organization,
        "listLocations": h.list_locations,
        "getLocation": h.get_location,
        "listCustomers": h.list_customers,
        "getCustomer": h.get_customer,
        "adjustPoints": h.adjust_points,
        "reversePoints": h.reverse_points,
        "listWebhooks": h.list_webhooks,
        "upsertWebhook": h.upsert_webhook,
        "deleteWebhook": h.delete_webhook,
        "listPayments": h.list_payments,
        "listCustomerLists": h.list_customer_lists,
        "createCustomerList": h.create_customer_list,
        "getCustomerList": h.get_customer_list,
        "listCustomerListMembers": h.list_customer_list_members,
        "addCustomerListMember": h.add_customer_list_member,
        "removeCustomerListMember": h.remove_customer_list_member,
    }
    admin_handlers: dict[str, Handler] = {
        "emitLokeEvent": h.admin_emit_event,
        "listLokeDeliveries": h.admin_list_deliveries,
        "clearLokeDeliveries": h.admin_clear_deliveries,
        "getLokeWebhookFaults": h.admin_get_faults,
        "setLokeWebhookFaults": h.admin_set_faults,
        "clearLokeWebhookFaults": h.admin_clear_faults,
    }

    def create_store(self, services: Services) -> LokeStore:
        runtime = services.runtimes.get(self.slug)
        previous = getattr(runtime, "store", None)
        if isinstance(previous, LokeStore) and previous.outbound is not None:
            previous.outbound.close()  # a reset: nothing of the old store may still be sent
        store = seed.build(services.settings.seed)
        h.outbound_for(services, store)
        return store

    def authenticate(self, services: Services, store: LokeStore, credential: Credential) -> Any | None:
        if credential.kind != "bearer":
            return None
        return store.client_id if store.token_valid(credential.value, services.clock.now()) else None

    def credentials(self, store: LokeStore) -> dict[str, Any]:
        installed = store.installed
        return {
            "loke": {
                "client_id": store.client_id,
                "client_secret": store.client_secret,
                "organization_id": installed[0].id,
                "access_token": store.seeded_token,
                "second_organization_id": installed[1].id,
                "not_installed_organization_id": store.not_installed[0].id,
            }
        }

    def check_fixtures(self, services: Services, store: LokeStore, section: Any) -> list[FieldError]:
        return fixtures.check(store, section)

    def load_fixtures(self, services: Services, store: LokeStore, section: Any) -> int:
        return fixtures.load(store, section, services.clock.now())
