"""Whole-mock operations used by start-up and the admin API: reset, fixtures, credentials."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mock_server.apis.base import Services, Shared
from mock_server.dispatcher import ApiRuntime
from mock_server.errors import FieldError, ValidationFailed
from mock_server.persistence import Snapshot, StateFileError


def vendor_runtimes(services: Services) -> list[ApiRuntime]:
    return [rt for slug, rt in services.runtimes.items() if not slug.startswith("__")]


def snapshot(services: Services) -> Snapshot:
    return Snapshot(
        seed=services.settings.seed,
        apis=tuple(services.settings.apis),
        shared=services.shared,
        stores={rt.slug: rt.store for rt in vendor_runtimes(services)},
        clock=services.clock.state(),
    )


def persist(services: Services) -> None:
    """Write all state to the state file (a no-op without --state-file)."""
    if services.state_file is not None:
        services.state_file.save(snapshot(services))


def restore(services: Services, saved: Snapshot) -> None:
    settings = services.settings
    if saved.seed != settings.seed or tuple(saved.apis) != tuple(settings.apis):
        raise StateFileError(
            f"state file {services.state_file.path} was written by a mock with --seed {saved.seed} and APIs "
            f"{', '.join(saved.apis)}; start with the same options or another --state-file"
        )
    services.shared = saved.shared
    for runtime in vendor_runtimes(services):
        runtime.store = saved.stores[runtime.slug]
    services.clock.restore(saved.clock)


def reset_all(services: Services) -> None:
    """Forget everything and re-seed: same seed, same credentials and records as at start-up."""
    services.clock.reset()
    services.journal.reset()
    services.faults.reset()
    services.rng.seed(services.settings.seed)
    services.shared = Shared()
    for runtime in services.runtimes.values():
        runtime.reset_store()
    if services.settings.fixtures is not None:
        load_fixtures(services, read_fixtures_file(services.settings.fixtures))
    persist(services)


def read_fixtures_file(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except OSError as exc:
        raise ValidationFailed(f"cannot read fixtures file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"fixtures file {path} is not valid YAML/JSON: {exc}") from None


def load_fixtures(services: Services, document: Any) -> dict[str, int]:
    """Check every section first, then load: a bad record loads nothing at all."""
    if not isinstance(document, Mapping):
        raise ValidationFailed("fixtures must be a mapping of section name -> records")
    by_section = {
        rt.definition.fixture_section: rt for rt in vendor_runtimes(services) if rt.definition.fixture_section
    }
    errors: list[FieldError] = []
    for name, section in document.items():
        runtime = by_section.get(str(name))
        if runtime is None:
            known = ", ".join(sorted(by_section)) or "none"
            errors.append(FieldError(str(name), f"no mounted API takes this section; sections taken: {known}"))
            continue
        errors.extend(
            FieldError(f"{name}.{e.field}" if not e.field.startswith(str(name)) else e.field, e.message)
            for e in runtime.definition.check_fixtures(services, runtime.store, section)
        )
    if errors:
        raise ValidationFailed("Fixtures rejected; nothing was loaded", errors)
    return {
        str(name): by_section[str(name)].definition.load_fixtures(services, by_section[str(name)].store, section)
        for name, section in document.items()
    }


def collect_credentials(services: Services) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for runtime in vendor_runtimes(services):
        found.update(runtime.definition.credentials(runtime.store))
    return found


def new_rng(seed: int) -> random.Random:
    return random.Random(seed)
