"""The base of every model of the routing file: unknown keys refused, instances frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RoutingModel(BaseModel):
    """A part of the routing file. An unknown key is an error (usually a misspelt one), and a
    field with an alias is read under Adobe's name (`jsConnector`) or its Python name."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
