"""Operations that must not be fuzzed on a real account unless `--allow-irreversible` is given:
they cannot be undone through the API, cost money or points, or change what the account's own
integration depends on. Against the in-process mock everything runs (it is reset per test).
"""

from __future__ import annotations

IRREVERSIBLE: dict[str, dict[str, str]] = {
    "letstrade-pos": {
        "finaliseOfferings": "charges the wallet/card, burns vouchers and awards points; cannot be undone",
        "refund": "reverses a finalised transaction (moves money back)",
    },
    "letstrade-channels": {
        "signUp": "registers a Let'sTrade user, which the API cannot delete",
        "createChannel": "creates a channel, which the API cannot delete",
        "updateChannel": "changes a channel's status, permissions or field schema",
        "rotateChannelKey": "invalidates the channel's current API key",
        "upsertChannelCustomer": "creates or changes CRM customers, which the API cannot delete",
        "upsertChannelProduct": "creates or changes CRM products, which the API cannot delete",
    },
    "customtrades": {
        "deleteCustomer": "soft-deletes a customer (no undelete in the API)",
    },
    "capillary": {
        "registerCustomer": "registers customers (cannot be deleted) and awards enrolment and welcome points",
        "updateCustomer": "changes existing customer records",
    },
    "loke": {
        "adjustPoints": "awards or deducts loyalty points",
        "reversePoints": "reverses a points record",
        "upsertWebhook": "subscribes a URL to the organization's customer data (events would leak to it)",
        "deleteWebhook": "deletes a webhook subscription, possibly the integration's own",
        "createCustomerList": "creates a customer list, which the API cannot delete",
        "addCustomerListMember": "changes a marketing list's membership",
        "removeCustomerListMember": "removes a customer from a marketing list",
    },
}


def is_irreversible(slug: str, operation_id: str | None) -> bool:
    return operation_id is not None and operation_id in IRREVERSIBLE.get(slug, {})


def reason(slug: str, operation_id: str) -> str:
    why = IRREVERSIBLE[slug][operation_id]
    return f"irreversible on a real target ({why}); run with --allow-irreversible to include {slug} {operation_id}"
