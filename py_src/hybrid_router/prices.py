"""Cloud list prices: the ``cloud_prices`` section of ``models_manifest.json``, read by :class:`CloudPrices`.

The section is ``{model_name: {"input_usd_per_mtok", "output_usd_per_mtok", "source"?, "note"?}}``
(USD per million tokens) and must hold a ``"default"`` entry, used for models it does not list.
:meth:`CloudPrices.price_for` matches a model name case-insensitively: the exact name, else the
longest listed name it starts with followed by ``-``, ``:`` or ``@`` (so ``gpt-4o-mini-2024-07-18``
is priced as ``gpt-4o-mini``), else ``"default"``. A manifest without the section prices everything
at 0. Pure Python (stdlib only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import ValidationError

__all__ = ["DEFAULT", "CloudPrice", "CloudPrices"]

#: The entry used for models the table does not list.
DEFAULT = "default"
_SEPARATORS = ("-", ":", "@")


def _fail(where: str, message: str) -> ValidationError:
    return ValidationError(
        f"models manifest: {where}: {message}",
        hint="Fix the cloud_prices section of models_manifest.json (see py_src/hybrid_router/prices.py).",
    )


@dataclass(frozen=True)
class CloudPrice:
    """A model's list price in USD per million tokens, and where it comes from."""

    model: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    source: str | None = None
    note: str | None = None

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """The price of one call with that usage, in USD."""
        return (tokens_in * self.input_usd_per_mtok + tokens_out * self.output_usd_per_mtok) / 1_000_000

    @classmethod
    def from_dict(cls, model: str, d: object) -> CloudPrice:
        where = f"cloud_prices[{model!r}]"
        if not isinstance(d, Mapping):
            raise _fail(where, "must be an object {input_usd_per_mtok, output_usd_per_mtok, source, note}")
        if unknown := sorted(set(d) - {"input_usd_per_mtok", "output_usd_per_mtok", "source", "note"}):
            raise _fail(where, f"unknown keys {unknown}")
        prices = []
        for key in ("input_usd_per_mtok", "output_usd_per_mtok"):
            value = d.get(key)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise _fail(where, f"{key} must be a number >= 0, got {value!r}")
            prices.append(float(value))
        texts = [d.get(key) for key in ("source", "note")]
        if any(t is not None and not isinstance(t, str) for t in texts):
            raise _fail(where, "source and note must be strings")
        return cls(model, prices[0], prices[1], source=texts[0], note=texts[1])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_usd_per_mtok": self.input_usd_per_mtok,
            "output_usd_per_mtok": self.output_usd_per_mtok,
        }
        out.update({k: v for k, v in (("source", self.source), ("note", self.note)) if v is not None})
        return out


@dataclass(frozen=True)
class CloudPrices:
    """The price table (names lower-cased); empty when the manifest has no ``cloud_prices``."""

    entries: Mapping[str, CloudPrice] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_dict(cls, d: object) -> CloudPrices:
        if not isinstance(d, Mapping):
            raise _fail("cloud_prices", "must be an object {model_name: price}")
        entries: dict[str, CloudPrice] = {}
        for name, raw in d.items():
            key = str(name).strip().lower()
            if not key:
                raise _fail("cloud_prices", "a model name must not be empty")
            if key in entries:
                raise _fail("cloud_prices", f"{name!r} is listed twice (names are case-insensitive)")
            entries[key] = CloudPrice.from_dict(key, raw)
        if DEFAULT not in entries:
            raise _fail("cloud_prices", f"needs a {DEFAULT!r} entry (the price of models it does not list)")
        return cls(MappingProxyType(entries))

    def price_for(self, model: str | None) -> CloudPrice:
        """The price of ``model`` (see the module docstring)."""
        if not self.entries:
            return CloudPrice(DEFAULT, 0.0, 0.0, note="the manifest has no cloud_prices")
        name = (model or "").strip().lower()
        if name in self.entries:
            return self.entries[name]
        prefixes = [
            k
            for k in self.entries
            if k != DEFAULT and name.startswith(k) and name[len(k) : len(k) + 1] in _SEPARATORS
        ]
        return self.entries[max(prefixes, key=len)] if prefixes else self.entries[DEFAULT]

    def to_dict(self) -> dict[str, Any]:
        return {name: price.to_dict() for name, price in self.entries.items()}
