"""The command-line options of the contract suite, parsed once per pytest run.

The plugin registers them (`plugin.py`) and stores the parsed `Options` here, because the test
modules build their schemathesis tests at import time (one pytest item per operation) and need
to know, before any fixture runs, which APIs are selected, which operations are excluded on a
real target and how many examples to generate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings

from contracts.specs import SLUGS

MOCK = "mock"

# Default request-rate caps (requests per second) on a target that is not a mock, each below
# what the vendor documents (or a conservative guess where it documents nothing).
DEFAULT_RPS: dict[str, float] = {
    "capillary": 80 / 60,  # documented 100 requests/minute (EMEA, Asia-2, demo clusters)
    "customtrades": 5.0,  # no per-minute limit; 50,000 requests per month per company
    "letstrade-pos": 5.0,  # not published
    "letstrade-channels": 5.0,  # not published
    "loke": 5.0,  # not published
}


@dataclass(frozen=True)
class Profile:
    name: str
    examples: int  # schemathesis examples per operation and generation mode
    stateful_examples: int  # hypothesis state machine runs through the specs' links
    stateful_steps: int  # steps per state machine run (links and hand-written)
    receiver_examples: int  # events per webhook event type / POS bodies
    machine_runs: int  # random runs of each hand-written machine, after its scripted tour


PROFILES: dict[str, Profile] = {
    # ci: the tour reaches every rule (contracts/stateful/__init__.py), so the random part went from
    # 8 runs to 7, which pays for the tour (about 1/8 of the 8 random runs' time)
    "ci": Profile("ci", examples=25, stateful_examples=8, stateful_steps=12, receiver_examples=10, machine_runs=7),
    "thorough": Profile(
        "thorough", examples=300, stateful_examples=100, stateful_steps=40, receiver_examples=100, machine_runs=100
    ),
}

# Named hypothesis profiles for the suite's own property tests. They are registered (so a user
# can refer to them) but never loaded: the suite applies them explicitly, so they never fight
# with a project's own profiles (this repository's tests/conftest.py loads ci/dev/thorough).
for _profile in PROFILES.values():
    settings.register_profile(
        f"lcs-{_profile.name}",
        max_examples=_profile.stateful_examples,
        stateful_step_count=_profile.stateful_steps,
        deadline=None,
        database=None,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


class OptionError(ValueError):
    pass


@dataclass(frozen=True)
class Options:
    target: str = MOCK  # "mock" or a base URL laid out like the mock (<URL>/<slug>/...)
    api_urls: dict[str, str] = field(default_factory=dict)  # slug -> that API's own base URL
    apis: tuple[str, ...] = SLUGS
    examples: int | None = None
    profile_name: str = "ci"
    allow_irreversible: bool = False
    max_rps: dict[str, float] = field(default_factory=dict)  # slug (or "*") -> cap
    webhook_receiver: str | None = None
    webhook_secret: str | None = None
    pos_callback_url: str | None = None

    @property
    def profile(self) -> Profile:
        return PROFILES[self.profile_name]

    @property
    def examples_per_operation(self) -> int:
        return self.examples if self.examples is not None else self.profile.examples

    def is_in_process(self, slug: str) -> bool:
        """Whether `slug` is tested against the in-process mock (started by the plugin)."""
        return slug not in self.api_urls and self.target == MOCK

    def stateful_settings(self) -> settings:
        base = settings.get_profile(f"lcs-{self.profile_name}")
        if self.examples is not None:
            return settings(base, max_examples=max(1, self.examples))
        return base

    def machine_settings(self) -> settings:
        """The random runs of the hand-written state machines (after their tour)."""
        base = self.stateful_settings()
        return base if self.examples is not None else settings(base, max_examples=self.profile.machine_runs)

    def rate_cap(self, slug: str, is_mock: bool) -> float | None:
        """Requests per second for `slug`, or None for no cap (a mock, unless a cap was given)."""
        cap = self.max_rps.get(slug, self.max_rps.get("*"))
        if cap is not None:
            return cap if cap > 0 else None
        return None if is_mock else DEFAULT_RPS[slug]


def parse_api_urls(values: list[str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values or []:
        slug, sep, url = value.partition("=")
        if not sep or slug not in SLUGS or not url.startswith(("http://", "https://")):
            raise OptionError(
                f"--api-url expects SLUG=http(s)://..., with SLUG one of {', '.join(SLUGS)}; got {value!r}"
            )
        found[slug] = url.rstrip("/")
    return found


def parse_apis(values: list[str] | None) -> tuple[str, ...]:
    if not values:
        return SLUGS
    chosen: list[str] = []
    for value in values:
        for slug in value.split(","):
            slug = slug.strip()
            if slug not in SLUGS:
                raise OptionError(f"--api expects one of {', '.join(SLUGS)}; got {slug!r}")
            if slug not in chosen:
                chosen.append(slug)
    return tuple(chosen)


def parse_max_rps(values: list[str] | None) -> dict[str, float]:
    found: dict[str, float] = {}
    for value in values or []:
        slug, sep, number = value.rpartition("=")
        key = slug if sep else "*"
        if key != "*" and key not in SLUGS:
            raise OptionError(f"--max-rps expects N or SLUG=N with SLUG one of {', '.join(SLUGS)}; got {value!r}")
        try:
            rate = float(number)
        except ValueError:
            raise OptionError(f"--max-rps expects a number of requests per second; got {value!r}") from None
        if rate < 0:
            raise OptionError(f"--max-rps must be 0 (no cap) or more; got {value!r}")
        found[key] = rate
    return found


def build_options(get: Any) -> Options:
    """Options from `config.getoption`-like `get(name)`."""
    target = str(get("lcs_target") or MOCK)
    if target != MOCK and not target.startswith(("http://", "https://")):
        raise OptionError(f"--target expects 'mock' or an http(s):// base URL; got {target!r}")
    profile = str(get("lcs_profile") or "ci")
    if profile not in PROFILES:
        raise OptionError(f"--profile expects one of {', '.join(PROFILES)}; got {profile!r}")
    examples = get("lcs_examples")
    if examples is not None and int(examples) < 1:
        raise OptionError("--examples must be at least 1")
    receiver = get("lcs_webhook_receiver")
    secret = get("lcs_webhook_secret")
    if receiver and not secret:
        raise OptionError(
            "--webhook-receiver needs --webhook-secret (the subscription secret the receiver verifies with)"
        )
    return Options(
        target=target.rstrip("/") if target != MOCK else MOCK,
        api_urls=parse_api_urls(get("lcs_api_url")),
        apis=parse_apis(get("lcs_api")),
        examples=int(examples) if examples is not None else None,
        profile_name=profile,
        allow_irreversible=bool(get("lcs_allow_irreversible")),
        max_rps=parse_max_rps(get("lcs_max_rps")),
        webhook_receiver=receiver,
        webhook_secret=secret,
        pos_callback_url=get("lcs_pos_callback_url"),
    )


_CURRENT: Options | None = None


def set_current(options: Options) -> None:
    global _CURRENT
    _CURRENT = options


def current() -> Options:
    """The options of the running pytest session (defaults outside pytest)."""
    return _CURRENT if _CURRENT is not None else Options()
