"""Slug -> the API's plug-in. The one place that lists the APIs."""

from __future__ import annotations

from typing import Any

from mock_server.apis.base import ApiDefinition
from mock_server.apis.capillary import CapillaryApi
from mock_server.apis.customtrades import CustomTradesApi
from mock_server.apis.letstrade_channels import LetstradeChannelsApi
from mock_server.apis.letstrade_pos import LetstradePosApi
from mock_server.apis.loke import LokeApi


def definitions() -> dict[str, ApiDefinition[Any]]:
    found: list[ApiDefinition[Any]] = [
        LetstradePosApi(),
        LetstradeChannelsApi(),
        CustomTradesApi(),
        CapillaryApi(),
        LokeApi(),
    ]
    return {d.slug: d for d in found}
