"""Start-up settings of the mock: one frozen dataclass, no module-level state."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SLUGS: tuple[str, ...] = ("letstrade-pos", "letstrade-channels", "customtrades", "capillary", "loke")
CAPILLARY_REGION_RPM: dict[str, int] = {"asia2": 100, "asia1": 600, "emea": 100}
EVENT_LOOPS: tuple[str, ...] = ("auto", "uvloop", "asyncio")  # `serve --loop` (mock_server.eventloop)


@dataclass(frozen=True)
class Settings:
    """Everything `loyalty-mock serve` can be told. Defaults are the vendors' documented ones."""

    host: str = "127.0.0.1"
    port: int = 8080
    apis: tuple[str, ...] = SLUGS
    seed: int = 0
    pos_callback_url: str | None = None
    pos_callback_timeout: float = 5.0
    pos_bill_timeout: float = 1800.0
    fixtures: Path | None = None
    customtrades_quota: int = 50_000
    capillary_region: str = "emea"
    capillary_rpm: int | None = None
    seed_customers: int = 0
    strict: bool = False
    examples_only: bool = False
    log_level: str = "info"
    journal_max_entries: int = 10_000
    journal_max_bytes: int = 32 * 1024 * 1024
    journal_max_total_bytes: int = 512 * 1024 * 1024  # every tenant's journal together
    max_body_bytes: int = 1024 * 1024
    body_timeout: float = 30.0  # seconds to receive a whole body (slow senders get a 408)
    max_url_bytes: int = 16 * 1024
    max_header_bytes: int = 16 * 1024
    admin_token: str | None = None
    state_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    specs_dir: Path | None = None
    tenant_ttl: float = 24 * 3600.0  # seconds of real time an idle tenant lives (0 = forever)
    max_tenants: int = 1000  # tenants one process holds (0 = no tenants)
    event_loop: str = "auto"  # `serve --loop`: auto (uvloop when importable) | uvloop | asyncio (`eventloop`)
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [slug for slug in self.apis if slug not in SLUGS]
        if unknown:
            raise ValueError(f"unknown API slug(s) {', '.join(unknown)}; expected one of {', '.join(SLUGS)}")
        if not self.apis:
            raise ValueError("at least one API must be selected")
        if self.capillary_region not in CAPILLARY_REGION_RPM:
            raise ValueError(
                f"unknown Capillary region {self.capillary_region!r}; expected one of {', '.join(CAPILLARY_REGION_RPM)}"
            )
        for name in ("customtrades_quota", "seed_customers", "journal_max_entries", "journal_max_bytes",
                     "journal_max_total_bytes", "max_tenants"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must be 0 or more")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(f"unknown event loop {self.event_loop!r}; expected one of {', '.join(EVENT_LOOPS)}")
        if self.tenant_ttl < 0:
            raise ValueError("tenant-ttl must be 0 or more seconds")
        if self.capillary_rpm is not None and self.capillary_rpm < 0:
            raise ValueError("capillary-rpm must be 0 or more")

    @property
    def effective_capillary_rpm(self) -> int:
        """Requests per minute per credential; 0 means unlimited."""
        if self.capillary_rpm is not None:
            return self.capillary_rpm
        return CAPILLARY_REGION_RPM[self.capillary_region]
