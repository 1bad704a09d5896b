"""The cost ledger: every finished request, today's cloud spend, and what the device saved.

Each generation (the tasks of :data:`hybrid_router.execute.LEDGER_TASKS`) is recorded once by the
executor, whether it ended in a result or an error (a cancelled call is an error named ``AbortError``; a
call refused at the wire is an error too). The device tasks (embeddings, classification, ...) are not
counted here. :meth:`Ledger.stats` gives

- ``requests``: every recorded request; ``local`` / ``cloud``: those answered by that side;
  ``errors``: those that ended in an error (so ``requests == local + cloud + errors``);
- ``fallbacks``: requests on which the other side was tried after a failure (answered or not);
- ``cloud_cost_usd``: the estimated cost of the cloud answers (the manifest's price table);
- ``saved_usd``: what the requests the device answered would have cost in the cloud, priced with the
  configured cloud model (``cloud_model``; the table's ``"default"`` when unknown or None);
- ``spent_today_usd``: the cloud spend of the current day, which the budget rule reads. It restarts
  at 0 when ``today()`` returns a new date.

``to_state()`` / ``from_state()`` turn the ledger into plain data and back, so the worker can keep it
across reloads. Pure Python, no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from hybrid_router.errors import ValidationError
from hybrid_router.route import Route, Target

__all__ = ["STATE_VERSION", "Ledger", "Price", "PriceTable"]

#: The version of :meth:`Ledger.to_state`'s format.
STATE_VERSION = 1


class Price(Protocol):
    """A model's list price (see ``manifest.CloudPrice``)."""

    def cost(self, tokens_in: int, tokens_out: int) -> float: ...


class PriceTable(Protocol):
    """Where prices come from (``Manifest`` and its ``cloud_prices`` both are one)."""

    def price_for(self, model: str | None) -> Price: ...


@dataclass
class _Totals:
    requests: int = 0
    local: int = 0
    cloud: int = 0
    fallbacks: int = 0
    errors: int = 0
    cloud_cost_usd: float = 0.0
    saved_usd: float = 0.0


class Ledger:
    """Counts requests and money; see the module docstring."""

    def __init__(
        self,
        prices: PriceTable,
        *,
        cloud_model: str | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.prices = prices
        #: The model whose price the savings are estimated with (the configured cloud model).
        self.cloud_model = cloud_model
        self._today = today
        self._totals = _Totals()
        self._day = today()
        self._spent = 0.0
        #: called after every recorded request (the worker saves the state so a reload keeps the budget)
        self.listeners: list[Callable[[Ledger], None]] = []

    def cost(self, model: str | None, tokens_in: int, tokens_out: int) -> float:
        """The estimated price of a cloud call to ``model`` with that usage."""
        return self.prices.price_for(model).cost(tokens_in, tokens_out)

    def record(
        self,
        *,
        target: Target | None,
        fallback: bool = False,
        error: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        """One finished request: the side that answered (or last tried, or None), whether a fallback
        was tried, the name of the error it ended in (None: it answered), its usage and cloud cost."""
        if target not in ("local", "cloud", None):
            raise ValueError(f"target must be 'local', 'cloud' or None, got {target!r}")
        if not math.isfinite(cost_usd) or cost_usd < 0:
            raise ValueError(f"cost_usd must be a finite number >= 0, got {cost_usd!r}")
        totals = self._totals
        totals.requests += 1
        totals.fallbacks += int(fallback)
        if cost_usd:
            totals.cloud_cost_usd += cost_usd
            self._roll_day()
            self._spent += cost_usd
        if error is not None:
            totals.errors += 1
        elif target == "cloud":
            totals.cloud += 1
        elif target == "local":
            totals.local += 1
            totals.saved_usd += self.cost(self.cloud_model, tokens_in, tokens_out)
        for listener in self.listeners:
            listener(self)

    def record_route(self, route: Route) -> None:
        """A request answered as ``route`` says."""
        self.record(
            target=route.target,
            fallback=bool(route.fallbacks),
            tokens_in=route.tokens_in,
            tokens_out=route.tokens_out,
            cost_usd=route.cost_usd,
        )

    def spent_today(self) -> float:
        """The cloud spend of the current day in USD."""
        self._roll_day()
        return self._spent

    def stats(self) -> dict[str, Any]:
        """The counters and money of the module docstring, as plain data."""
        wire = dataclasses.asdict(self._totals)
        wire["spent_today_usd"] = self.spent_today()
        return wire

    def to_state(self) -> dict[str, Any]:
        """Everything the ledger knows, as JSON-able data (see :meth:`from_state`)."""
        self._roll_day()
        return {
            "version": STATE_VERSION,
            "totals": dataclasses.asdict(self._totals),
            "day": self._day.isoformat(),
            "spent_usd": self._spent,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        prices: PriceTable,
        *,
        cloud_model: str | None = None,
        today: Callable[[], date] = date.today,
    ) -> Ledger:
        """A ledger restored from :meth:`to_state`; a spend of an earlier day is not carried over."""
        ledger = cls(prices, cloud_model=cloud_model, today=today)
        try:
            if state["version"] != STATE_VERSION:
                raise ValueError(f"version {state['version']!r} is not {STATE_VERSION}")
            totals = _Totals(**state["totals"])
            for f in dataclasses.fields(totals):
                value = getattr(totals, f.name)
                kind = int if f.type == "int" else (int, float)
                if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
                    raise ValueError(f"{f.name} must be a number >= 0, got {value!r}")
                setattr(totals, f.name, float(value) if f.type == "float" else value)
            day = date.fromisoformat(state["day"])
            spent = float(state["spent_usd"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"the saved ledger state cannot be read: {type(exc).__name__}: {exc}",
                hint="Discard the saved statistics (they restart at zero).",
            ) from exc
        ledger._totals = totals
        if day == ledger._day:
            ledger._spent = spent
        return ledger

    def _roll_day(self) -> None:
        day = self._today()
        if day != self._day:
            self._day, self._spent = day, 0.0
