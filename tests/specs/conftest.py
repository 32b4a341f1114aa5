from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "openapi"
SAMPLES = ROOT / "tests" / "fixtures" / "seed_samples"
VENDOR_SPECS = [
    "letstrade-pos",
    "letstrade-pos-provider",
    "letstrade-channels",
    "customtrades",
    "capillary",
    "loke",
]
ALL_SPECS = [*VENDOR_SPECS, "admin"]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def load(name: str) -> dict[str, Any]:
    with (OPENAPI / f"{name}.yaml").open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in (document.get("paths") or {}).items():
        for method in METHODS:
            if method in item:
                found.append((path, method, item[method]))
    return found
