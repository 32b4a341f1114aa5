"""Capillary v2 customers (`capillary`): Basic and OAuth authentication, multi-source
registration with Capillary's error codes, loyalty side effects, lookup, update, extended fields,
and the regional requests-per-minute limit on the virtual clock.

Modules: `registration` (pure rules: truncation, identifiers, resolution, side effects),
`ratelimit` (pure sliding window), `org` (the organisation's configuration), `store` (state),
`handlers` (HTTP <-> domain).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mock_server import secrets
from mock_server.apis.base import ApiDefinition, ApiRequest, Credential, Handler, Services, seeded_rng
from mock_server.apis.capillary import registration as reg
from mock_server.apis.capillary.handlers import ADMIN_HANDLERS, HANDLERS
from mock_server.apis.capillary.org import parse_config
from mock_server.apis.capillary.store import CapillaryStore, CustomerBook
from mock_server.clock import isoformat
from mock_server.errors import FieldError, MockError, TooManyRequests, Unauthorized

_MAX_ID = 2**63 - 1
# the OAuth token's headers: CAP-API-ACCESS-TOKEN (public docs) and X-CAP-API-OAUTH-TOKEN (the
# vendor's current samples), the same token in either
OAUTH_SCHEMES = frozenset({"oauthToken", "oauthTokenHeader"})


class CapillaryApi(ApiDefinition[CapillaryStore]):
    slug = "capillary"
    spec_name = "capillary"
    envelope = "capillary"
    fixture_section = "capillary"
    handlers: dict[str, Handler] = HANDLERS
    admin_handlers: dict[str, Handler] = ADMIN_HANDLERS

    def create_store(self, services: Services) -> CapillaryStore:
        rng = seeded_rng(services.settings.seed, self.slug)
        return CapillaryStore(
            till_username="mock.till",
            till_password="Till-" + secrets.token_urlsafe(rng, 9),
            oauth_key="key_" + secrets.token_hex(rng, 8),
            oauth_secret="sec_" + secrets.token_hex(rng, 16),
            rng_seed=secrets.token_hex(rng, 8),
            rpm=services.settings.effective_capillary_rpm,
            rng=seeded_rng(services.settings.seed, self.slug, "records"),
        )

    def authenticate(self, services: Services, store: CapillaryStore, credential: Credential) -> Any | None:
        if credential.kind == "basic":
            user_ok = secrets.same(credential.value, store.till_username)
            password_ok = secrets.same((credential.password or "").lower(), secrets.md5_hex(store.till_password))
            return f"till:{store.till_username}" if user_ok and password_ok else None
        if credential.scheme in OAUTH_SCHEMES:
            expiry = store.token_expiry(credential.value)
            if expiry is None:
                return None
            if services.clock.now() >= expiry:
                raise Unauthorized(
                    f"The access token expired at {isoformat(expiry)}; generate a new one with "
                    "POST /v3/oauth/token/generate"
                )
            return f"oauth:{store.oauth_key}"
        return None

    def credentials(self, store: CapillaryStore) -> dict[str, Any]:
        return {
            "capillary": {
                "till_username": store.till_username,
                "till_password": store.till_password,
                "oauth_key": store.oauth_key,
                "oauth_secret": store.oauth_secret,
            }
        }

    def admit(self, services: Services, store: CapillaryStore, request: ApiRequest) -> None:
        """The region's requests-per-minute limit, per credential (a till, or an OAuth client with
        all its tokens), as a sliding window on the virtual clock."""
        if store.limiter.limit == 0:
            return
        key = request.principal
        # the token endpoint has no security: it counts against the OAuth client it names
        body = request.body
        if key is None and isinstance(body, Mapping) and secrets.same(str(body.get("key", "")), store.oauth_key):
            key = f"oauth:{store.oauth_key}"
        if key is None:
            return
        wait = store.limiter.acquire(str(key), services.clock.timestamp())
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            settings = services.settings
            where = "--capillary-rpm" if settings.capillary_rpm is not None else f"region {settings.capillary_region}"
            raise TooManyRequests(
                f"Rate limit exceeded: {store.limiter.limit} requests per minute per credential ({where}); "
                f"retry after {seconds} seconds",
                headers={"Retry-After": str(seconds)},
            )

    # fixtures ----------------------------------------------------------------------------------
    def _prepare(self, services: Services, store: CapillaryStore, section: Any) -> tuple[Any, Any, list[FieldError]]:
        """A dry run of a fixtures section on copies: (config, book, problems)."""
        if not isinstance(section, Mapping):
            return None, None, [FieldError("capillary", "expected an object with `settings` and/or `customers`")]
        errors = [
            FieldError(f"capillary.{key}", "unknown key; expected settings or customers")
            for key in section if key not in ("settings", "customers")
        ]
        config, config_errors = store.config, list[FieldError]()
        if "settings" in section:
            config, config_errors = parse_config(section["settings"], store.config, "capillary.settings")
        errors.extend(config_errors)
        book: CustomerBook = store.book.clone()
        records = section.get("customers", [])
        if not isinstance(records, list):
            errors.append(FieldError("capillary.customers", "expected a list of registration bodies"))
            records = []
        runtime = services.runtimes.get(self.slug)
        validator = runtime.spec.by_id()["registerCustomer"].body_media["application/json"] if runtime else None
        now = services.clock.now()
        for index, record in enumerate(records):
            where = f"capillary.customers[{index}]"
            if not isinstance(record, Mapping):
                errors.append(FieldError(where, "expected a registration body (as POST /v2/customers takes)"))
                continue
            body = {k: v for k, v in record.items() if k != "id"}
            customer_id = record.get("id")
            if customer_id is not None and (
                isinstance(customer_id, bool) or not isinstance(customer_id, int) or not 1 <= customer_id <= _MAX_ID
            ):
                errors.append(FieldError(f"{where}.id", "expected a positive 64-bit integer customer ID"))
                continue
            problems = validator.errors(body) if validator is not None else []
            if problems:
                errors.extend(FieldError(f"{where}.{p.field}", p.message) for p in problems)
                continue
            if config_errors:
                continue  # extended fields are checked against the settings: fix those first
            try:
                registration = reg.parse_registration(body, config)
                book.register(registration, config, now, "fixtures", {}, customer_id=customer_id)
            except MockError as error:
                found = error.fields or [FieldError("", error.message)]
                errors.extend(
                    FieldError(f"{where}.{f.field}" if f.field else where, f.message if f.field else error.message)
                    for f in found
                )
        return config, book, errors

    def check_fixtures(self, services: Services, store: CapillaryStore, section: Any) -> list[FieldError]:
        return self._prepare(services, store, section)[2]

    def load_fixtures(self, services: Services, store: CapillaryStore, section: Any) -> int:
        config, book, errors = self._prepare(services, store, section)
        if errors:  # check_fixtures said yes a moment ago; never load half a section
            raise MockError("capillary fixtures changed between check and load")
        store.config, store.book = config, book
        return len(section.get("customers") or []) + (1 if "settings" in section else 0)
