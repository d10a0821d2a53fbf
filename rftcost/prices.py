"""Effective-dated token price tables (R9, R10).

A table maps a model family to an ordered list of ``(effective_from, rates)``
entries; the latest entry whose ``effective_from`` is at or before the usage
time is in force. Dated model names (``gpt-4.1-2025-04-14``) resolve to their
family. There is no global mutable price state: tables are values, loaded from
the TOML files packaged in ``rftcost/data/prices`` or from a user's file.

Two layers (issue 12, kind 14). The base layer is the OpenAI provider of the
``genai-prices`` package (pydantic's maintained, effective-dated price data, read
from the snapshot shipped inside the package: rftcost never starts its updater, so
nothing is fetched at run time; a copy of its OpenAI rates, ``data/genai/openai.json``,
stands in for importing it when it was read from the very files installed). It prices
every model a grader can run, the gpt-5 family included. The packaged (or the user's)
table is an override layer: a model family it names is priced by its entries alone,
with their sources.
``price_differences`` lists every entry where the two layers disagree, with both
sources, and ``PriceTable.provenance`` names the layers and the package version,
which a bill shows so that a library update never changes an old bill silently.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Callable, Container
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rftcost.errors import PolicyError, PriceNotFoundError, settings_problems

if TYPE_CHECKING:  # pandas only for the kernel's frame: `policy show` does without it
    import pandas as pd

__all__ = [
    "GENAI_PRICES",
    "GENAI_SNAPSHOT",
    "PICO_PER_DOLLAR",
    "PriceDifference",
    "PriceEntry",
    "PriceTable",
    "genai_fingerprint",
    "genai_openai_prices",
    "genai_price_table",
    "layer_price_tables",
    "load_price_table",
    "packaged_price_tables",
    "price_differences",
    "read_settings_file",
    "read_toml",
    "resolve_model_family",
    "token_price_pico",
]

GENAI_PRICES = "genai-prices"
"""Name of the base price layer (the ``genai-prices`` package's bundled data)."""

PICO_PER_DOLLAR = 10**12
"""Token amounts are summed exactly in pico-dollars (1e-12 USD) before rounding to cents."""

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def resolve_model_family(model: str, known: Container[str] = ()) -> str:
    """``gpt-4.1-2025-04-14`` → ``gpt-4.1`` (R10); a name without a date suffix is
    unchanged, and so is a name ``known`` as it is: a price table's own row for a dated
    snapshot (``gpt-4o-2024-05-13``, priced apart from ``gpt-4o``) is that snapshot's."""
    name = model.strip()
    return name if name in known else _DATE_SUFFIX.sub("", name)


_MAX_RATE = 1_000_000
"""The largest token rate a table may give, per 1M tokens (the highest real one is in the
hundreds)."""


def _decimal_rate(value: Any) -> Decimal:
    if isinstance(value, float):
        raise ValueError('write rates as strings ("2.00"), not floats, so they stay exact')
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"a rate must be a number, got {value!r}") from None
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"a rate must be a non-negative number, got {value!r}")
    if rate > _MAX_RATE:
        # Priced in 64-bit pico-units per token, a larger rate would overflow mid-bill.
        raise ValueError(f"a rate above {_MAX_RATE:,} per 1M tokens, got {value!r}")
    exponent = rate.as_tuple().exponent  # an int: the rate is finite
    if isinstance(exponent, int) and exponent < -6:
        raise ValueError(f"a rate per 1M tokens has at most 6 decimals, got {value!r}")
    return rate


def token_price_pico(rate: Decimal, unit_tokens: int) -> int:
    """A token rate (currency per ``unit_tokens`` tokens) → pico-units per token (R13).

    ``PriceTable.to_frame`` gives the kernel these; the audit and the estimator use the
    same. A table's rates have at most 6 decimals per 1M tokens, so with the default
    unit this is exact (``rules`` re-exports it beside the other rules).
    """
    return int(rate * (Decimal(PICO_PER_DOLLAR) / unit_tokens))


class PriceEntry(BaseModel):
    """Rates of one model from a date on, USD per ``unit_tokens`` tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effective_from: datetime
    """First moment (timezone-aware) at which these rates apply."""
    input: Decimal
    """Price of uncached input tokens."""
    cached_input: Decimal
    """Price of cached input tokens."""
    output: Decimal
    """Price of output tokens."""
    source: str
    """Where the rates come from (a page, an announcement)."""

    @field_validator("input", "cached_input", "output", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Decimal:
        return _decimal_rate(value)

    @field_validator("effective_from")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("effective_from needs a timezone offset (e.g. 2025-06-10T00:00:00Z)")
        if not 1970 <= value.astimezone(UTC).year <= 2261:
            # The kernel's times are int64 nanoseconds (years 1677-2262).
            raise ValueError(f"effective_from must be in the years 1970-2261, got {value}")
        return value


class PriceTable(BaseModel):
    """Token prices per model family, each an ordered list of dated entries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """The table's name (its file name for packaged tables)."""
    currency: str = "USD"
    """Currency of every rate."""
    unit_tokens: int = Field(default=1_000_000, gt=0)
    """How many tokens a rate is for (1M on OpenAI's pricing page)."""
    models: dict[str, tuple[PriceEntry, ...]]
    """Model family → entries sorted by ``effective_from``."""
    provenance: str = ""
    """Which layers and versions the rates come from (a bill shows it); empty: ``name``."""
    overrides: tuple[str, ...] = ()
    """Model families priced by the override layer (empty for a single-layer table)."""

    def override_layer(self) -> PriceTable:
        """The override layer alone: the families it names, with its entries."""
        if not self.overrides:
            return self
        models = {family: self.models[family] for family in self.overrides}
        return self.model_copy(update={"models": models, "provenance": "", "overrides": ()})

    @property
    def price_source(self) -> str:
        """``openai-standard over genai-prices 0.2.3``: what a bill names as its price source."""
        return self.provenance or self.name

    @field_validator("models")
    @classmethod
    def _sorted(cls, value: dict[str, tuple[PriceEntry, ...]]) -> dict[str, tuple[PriceEntry, ...]]:
        ordered = {
            model: tuple(sorted(entries, key=lambda e: e.effective_from))
            for model, entries in value.items()
        }
        for model, entries in ordered.items():
            for earlier, later in itertools.pairwise(entries):
                if earlier.effective_from == later.effective_from:
                    # R10: "the latest entry at or before" would be either: which one is
                    # in force must be written, not left to the file's order.
                    raise ValueError(
                        f"{model}: two entries take effect at "
                        f"{later.effective_from.isoformat().replace('+00:00', 'Z')}"
                    )
        return ordered

    def lookup(self, model: str, at: datetime) -> PriceEntry:
        """The entry in force for ``model`` at ``at`` (R10); raises ``PriceNotFoundError``."""
        entries = self.models.get(resolve_model_family(model, self.models), ())
        in_force = [e for e in entries if e.effective_from <= at]
        if not in_force:
            raise PriceNotFoundError(model, at.isoformat())
        return in_force[-1]

    def to_frame(self) -> pd.DataFrame:
        """One row per entry: family, ``effective_ns`` and rates in pico-dollars per token.

        The kernel joins usage events to this frame with ``merge_asof`` (R10).
        """
        return self._derived("entries", self._entry_frame).copy()

    @property
    def entry_sources(self) -> pd.DataFrame:
        """One row per entry: ``grader_family``, ``price_index`` and the entry's ``price_source``
        (the table's size, not the log's)."""
        return self._derived("sources", self._source_frame).copy()

    def _derived(self, name: str, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """A frame derived from ``models``, built once per table: a bill in parts asks for it
        per part. Kept in the instance like a ``cached_property``, with the ``models`` and
        ``unit_tokens`` it was built from: ``model_copy(update=...)`` copies the instance's
        dictionary, and a copy with other entries must not reuse it."""
        key = f"_derived_{name}"
        cached = self.__dict__.get(key)
        if cached is None or cached[0] is not self.models or cached[1] != self.unit_tokens:
            cached = (self.models, self.unit_tokens, build())
            self.__dict__[key] = cached
        frame: pd.DataFrame = cached[2]
        return frame

    def _source_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [
                (family, index, entry.source)
                for family, entries in self.models.items()
                for index, entry in enumerate(entries)
            ],
            columns=["grader_family", "price_index", "price_source"],
        ).astype({"grader_family": "string", "price_index": "int64", "price_source": "string"})

    def _entry_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            {
                "grader_family": family,
                "effective_ns": int(pd.Timestamp(entry.effective_from).value),
                "price_index": index,
                "input_pico": token_price_pico(entry.input, self.unit_tokens),
                "cached_pico": token_price_pico(entry.cached_input, self.unit_tokens),
                "output_pico": token_price_pico(entry.output, self.unit_tokens),
            }
            for family, entries in self.models.items()
            for index, entry in enumerate(entries)
        ]
        frame = pd.DataFrame(
            rows,
            columns=[
                "grader_family",
                "effective_ns",
                "price_index",
                "input_pico",
                "cached_pico",
                "output_pico",
            ],
        )
        return frame.astype(
            {
                "grader_family": "string",
                "effective_ns": "int64",
                "price_index": "int64",
                "input_pico": "int64",
                "cached_pico": "int64",
                "output_pico": "int64",
            }
        )


def packaged_price_tables() -> list[str]:
    """Names of the price tables that ship inside the package."""
    folder = resources.files("rftcost.data").joinpath("prices")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_price_table(name_or_path: str | Path) -> PriceTable:
    """Load a packaged table by name, or a TOML file by path; raises ``PolicyError``."""
    text, source = _read_table_text(name_or_path)
    raw = read_toml(text, source)
    raw.setdefault("name", Path(source).stem)
    try:
        return PriceTable.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(_first_error(exc), source=source) from exc


def read_toml(text: str, source: str) -> dict[str, Any]:
    """A policy's or price table's TOML text → its table; ``PolicyError`` naming ``source``
    when it is not TOML, or nested too deeply to read (Python's parser recurses). A
    byte-order mark before it is no part of it, as for every other input."""
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}", source=source) from exc
    except RecursionError:
        raise PolicyError("not valid TOML: nested too deeply", source=source) from None


def read_settings_file(path: Path, what: str) -> str:
    """A policy or price table file's text; ``PolicyError`` naming it when it cannot be
    read: missing, not a regular file (``/dev/zero`` would be read forever), not UTF-8."""
    if path.exists() and not path.is_file():
        raise PolicyError(f"not a regular file; a {what} is a TOML file", source=str(path))
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read {what} file: {exc.strerror}", source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=str(path)
        ) from exc


def _read_table_text(name_or_path: str | Path) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return read_settings_file(path, "price table"), str(path)
    if str(name_or_path) not in packaged_price_tables():
        raise PolicyError(
            f"unknown price table {str(name_or_path)!r}; "
            f"packaged tables: {', '.join(packaged_price_tables())}"
        )
    resource = resources.files("rftcost.data").joinpath("prices", f"{name_or_path}.toml")
    return resource.read_text(encoding="utf-8"), f"{name_or_path} (packaged)"


def _first_error(exc: ValidationError) -> str:
    return settings_problems(exc, "<price table>")


# --- the genai-prices base layer (kind 14) ---------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""``effective_from`` of a genai-prices price without a start date (in force from the start)."""


class PriceDifference(BaseModel):
    """One rate on which the override layer and genai-prices disagree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    """Model family."""
    effective_from: datetime
    """From when the two entries in force disagree."""
    rate: str
    """input, cached_input or output."""
    override: Decimal
    """The override layer's rate (the one used)."""
    override_source: str
    """Its source."""
    base: Decimal | None
    """genai-prices' rate (``None``: genai-prices has no price then)."""
    base_source: str
    """Its source."""


def _genai_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genai-prices")
    except PackageNotFoundError:  # pragma: no cover - a declared dependency
        return "unknown"


def _plain_rate(value: Any) -> Decimal | None:
    """A genai-prices rate: a Decimal, a tiered price (its base tier) or absent."""
    if value is None:
        return None
    base = getattr(value, "base", value)
    return base if isinstance(base, Decimal) else None


GENAI_SNAPSHOT = "genai/openai.json"
"""The OpenAI prices read from genai-prices, kept in ``rftcost/data`` (``genai_openai_prices``)."""

_GENAI_FILES = ("data.py", "types.py")
"""The files of the genai-prices package its OpenAI prices are read from (``genai_fingerprint``)."""


def genai_fingerprint() -> str | None:
    """SHA-256 of the installed genai-prices' data and types modules, found without importing
    the package (whose ``__init__`` imports its updater: httpx, asyncio); ``None`` if absent."""
    from importlib.util import find_spec

    spec = find_spec("genai_prices")
    folders = spec.submodule_search_locations if spec is not None else None
    if not folders:
        return None
    folder = Path(next(iter(folders)))
    digest = hashlib.sha256()
    for name in _GENAI_FILES:
        try:
            digest.update((folder / name).read_bytes())
        except OSError:
            return None
    return digest.hexdigest()


def genai_openai_prices() -> dict[str, Any]:
    """The OpenAI prices of the installed genai-prices, as plain data: its version, its
    ``genai_fingerprint``, the first pricing URL and, per model, its dated rates as text.

    Only the package's data module is read: its updater (the one part that goes to the
    network) is never started. A price without a start date is ``None`` (in force from
    1970); a time-of-day price (none for OpenAI) is skipped; a model without both an input
    and an output rate (embeddings, images) is not a grader model and is left out. The
    document is what ``rftcost/data/genai/openai.json`` holds (written by this function).
    """
    from genai_prices import data

    provider = next(p for p in data.providers if p.id == "openai")
    urls = provider.pricing_urls or ["provider openai"]
    models: list[list[Any]] = []
    for info in provider.models:
        priced = (
            [(None, info.prices)]
            if not isinstance(info.prices, list)
            else [(c.constraint, c.prices) for c in info.prices]
        )
        rows: list[list[str | None]] = []
        for constraint, price in priced:
            start = getattr(constraint, "start_date", None)
            if constraint is not None and start is None:
                continue  # a time-of-day price: not an effective date
            rates = (
                _plain_rate(getattr(price, "input_mtok", None)),
                _plain_rate(getattr(price, "cache_read_mtok", None)),
                _plain_rate(getattr(price, "output_mtok", None)),
            )
            if rates[0] is None or rates[2] is None:
                continue
            day = None if start is None else f"{start.year:04d}-{start.month:02d}-{start.day:02d}"
            rows.append([day, *(None if rate is None else str(rate) for rate in rates)])
        if rows:
            models.append([info.id, rows])
    return {
        "genai_prices": _genai_version(),
        "fingerprint": genai_fingerprint(),
        "pricing_url": urls[0],
        "models": models,
    }


def _genai_snapshot() -> dict[str, Any] | None:
    """The packaged copy of ``genai_openai_prices`` if it was read from the very files
    installed (same version, same fingerprint), else ``None``."""
    resource = resources.files("rftcost.data").joinpath(*GENAI_SNAPSHOT.split("/"))
    try:
        snapshot: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if snapshot.get("genai_prices") != _genai_version():
        return None
    if snapshot.get("fingerprint") != genai_fingerprint():
        return None
    return snapshot


@cache
def genai_price_table() -> PriceTable:
    """OpenAI's token prices from the ``genai-prices`` package's bundled snapshot.

    The rates are those of ``genai_openai_prices``. Importing genai-prices costs a
    command about 0.2 s (its ``__init__`` imports its updater, then every provider's
    data is built), so the copy packaged in ``rftcost/data`` is used when it was read
    from the installed files byte for byte (same version and SHA-256 of its data and
    types modules); otherwise (another version) the package is read itself. Either way
    the table, its sources and its provenance are the same.
    """
    read = _genai_snapshot() or genai_openai_prices()
    version = read["genai_prices"]
    source_of = f"genai-prices {version} ({read['pricing_url']})"
    models: dict[str, tuple[PriceEntry, ...]] = {}
    for model, rows in read["models"]:
        entries = []
        for day, input_rate, cached_rate, output_rate in rows:
            start = None if day is None else date.fromisoformat(day)
            effective = (
                _EPOCH
                if start is None
                else datetime(start.year, start.month, start.day, tzinfo=UTC)
            )
            try:
                entries.append(
                    PriceEntry(
                        effective_from=effective,
                        input=Decimal(input_rate),
                        cached_input=Decimal(
                            cached_rate if cached_rate is not None else input_rate
                        ),
                        output=Decimal(output_rate),
                        source=source_of,
                    )
                )
            except ValidationError:
                continue  # a rate rftcost cannot hold exactly (> 6 decimals): not priced
        if entries:
            models[model] = tuple(entries)
    return PriceTable(
        name=GENAI_PRICES,
        models=models,
        provenance=f"genai-prices {version} (bundled data, provider openai)",
    )


def layer_price_tables(override: PriceTable, base: PriceTable) -> PriceTable:
    """``override`` over ``base``: a family the override names is priced by it alone."""
    if override.currency != base.currency or override.unit_tokens != base.unit_tokens:
        # Rates per another unit or currency cannot be mixed: the override stands alone.
        return override
    return PriceTable(
        name=override.name,
        currency=override.currency,
        unit_tokens=override.unit_tokens,
        models={**base.models, **override.models},
        provenance=f"{override.name} over {base.provenance or base.name}",
        overrides=tuple(sorted(override.models)),
    )


def price_differences(override: PriceTable, base: PriceTable) -> list[PriceDifference]:
    """Every rate where ``override`` and ``base`` disagree, from each date either changes."""
    differences: list[PriceDifference] = []
    for family, entries in sorted(override.models.items()):
        base_entries = base.models.get(family, ())
        dates = sorted(
            {e.effective_from for e in entries}
            | {
                e.effective_from
                for e in base_entries
                if e.effective_from > entries[0].effective_from
            }
        )
        previous: dict[str, tuple[Decimal, Decimal | None]] = {}
        for at in dates:
            mine = [e for e in entries if e.effective_from <= at][-1]
            theirs = [e for e in base_entries if e.effective_from <= at]
            other = theirs[-1] if theirs else None
            for rate in ("input", "cached_input", "output"):
                value: Decimal = getattr(mine, rate)
                base_value: Decimal | None = getattr(other, rate) if other is not None else None
                pair = (value, base_value)
                if base_value == value or previous.get(rate) == pair:
                    previous[rate] = pair
                    continue
                previous[rate] = pair
                differences.append(
                    PriceDifference(
                        model=family,
                        effective_from=at,
                        rate=rate,
                        override=value,
                        override_source=mine.source,
                        base=base_value,
                        base_source=(
                            other.source if other is not None else f"{base.name}: no price"
                        ),
                    )
                )
    return differences
