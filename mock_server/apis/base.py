"""What an API plugs into the engine: its store, its credential check, its handlers.

The engine (dispatcher) owns HTTP, validation, faults and the journal; an API owns its state and
behaviour. Handlers receive a validated `ApiRequest` and return an `ApiResponse` (or raise a
`MockError`); they never see aiohttp.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from mock_server.clock import Clock
from mock_server.errors import FieldError
from mock_server.settings import Settings
from mock_server.spec import Operation

if TYPE_CHECKING:
    from mock_server.faults import FaultRegistry
    from mock_server.journal import Journal


class Credential(NamedTuple):  # a tuple: built on every authenticated request
    """A credential as the request carried it, for the security scheme it was found for."""

    scheme: str  # the securitySchemes name, e.g. "bearerAuth"
    kind: str  # "bearer" | "basic" | "apikey"
    value: str
    password: str | None = None  # for "basic"


@dataclass(slots=True)
class ApiRequest:
    operation: Operation
    path_params: dict[str, Any]
    query: dict[str, Any]
    headers: Mapping[str, str]
    body: Any
    principal: Any
    received_at: datetime  # the virtual clock when the request arrived (read once per request)
    # the API's own base URL as this client reached it (e.g. http://127.0.0.1:8080/loke), built
    # only when a handler asks: scheme and host cost a request's parsing of its Host header
    url_of_api: Callable[[], str]

    @property
    def base_url(self) -> str:
        return self.url_of_api()


@dataclass
class ApiResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


class Shared:
    """State more than one API uses (the Let'sTrade identity and customer store), created once per
    reset and handed to every API's `create_store`."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def get_or_create(self, name: str, factory: Callable[[], Any]) -> Any:
        if name not in self._items:
            self._items[name] = factory()
        return self._items[name]


@dataclass
class Services:
    """One world: everything a sandbox owns (settings with its seed, clock, journal, faults, shared
    state, rng, one runtime with its store per API, background tasks). The default tenant is one
    world; each tenant (`mock_server.tenants`) is another, whose runtimes share the default
    world's compiled parts (`dispatcher.ApiRuntime.for_world`)."""

    settings: Settings
    clock: Clock
    journal: Journal
    faults: FaultRegistry
    shared: Shared
    rng: random.Random
    runtimes: dict[str, Any] = field(default_factory=dict)  # slug -> dispatcher.ApiRuntime
    background: set[Any] = field(default_factory=set)  # asyncio tasks the app awaits at shutdown
    http: Any = None  # aiohttp.ClientSession for outgoing calls (webhooks, POS callbacks)
    state_file: Any = None  # persistence.DurableLog with --state-file (`lifecycle.open_state`)
    replaying: bool = False  # the durable log is being replayed: no outbound calls, no faults, no journal
    # tenants (shared sandboxes): on the default world, the registry of the other worlds
    # (`tenants.TenantRegistry`, None where tenants are not served); on a tenant's world, its
    # `tenants.Tenant` (None on the default world)
    tenants: Any = None
    tenant: Any = None


StoreT = TypeVar("StoreT")
Handler = Callable[[Services, Any, ApiRequest], "Awaitable[ApiResponse] | ApiResponse"]


class ApiDefinition(Generic[StoreT]):
    """Base class of each API's plug-in. Subclasses set the class attributes and override what
    they need; the defaults make an API that answers every operation from the spec's examples."""

    slug: str = ""
    spec_name: str = ""
    envelope: str = "problem"
    error_media_type: str = "application/json"
    journaled: bool = True
    example_mode_applies: bool = True  # False for the admin API: `--examples-only` never touches it
    handlers: Mapping[str, Handler] = {}
    # admin operations (operationIds of openapi/admin.yaml) this API serves; they receive this
    # API's store, and answer 404 when the API is not mounted
    admin_handlers: Mapping[str, Handler] = {}

    def create_store(self, services: Services) -> StoreT:
        raise NotImplementedError

    def guard(self, services: Services, headers: Mapping[str, str]) -> None:
        """Called before anything else, routing included, for every request: may raise (e.g. 401)."""

    def authenticate(self, services: Services, store: StoreT, credential: Credential) -> Any | None:
        """The principal a credential stands for, or None when it is not valid here."""
        return None

    def credentials(self, store: StoreT) -> dict[str, Any]:
        """Working credentials for `/__admin/credentials`, keyed as the README's credentials section fixes."""
        return {}

    fixture_section: str | None = None  # the section of a fixtures file this API loads

    def check_fixtures(self, services: Services, store: StoreT, section: Any) -> list[FieldError]:
        """Every problem with a fixtures section (record and field named), before anything loads."""
        return [FieldError(self.fixture_section or self.slug, "this API does not take fixtures yet")]

    def load_fixtures(self, services: Services, store: StoreT, section: Any) -> int:
        """Load a section that `check_fixtures` accepted; returns how many records were loaded."""
        return 0

    def admit(self, services: Services, store: StoreT, request: ApiRequest) -> None:
        """Called after authentication, before the handler: quotas and rate limits raise here."""

    def response_headers(self, services: Services, store: StoreT, principal: Any, now: datetime) -> dict[str, str]:
        """Headers added to every response of this API (e.g. usage counters)."""
        return {}


def seeded_rng(seed: int, *scope: str) -> random.Random:
    """A deterministic random source for one purpose: same seed, same values, every run."""
    return random.Random(":".join([str(seed), *scope]))
