"""Units of imported fields, parsed by udunits (cf-units) rather than a table of spellings.

Precipitation is stored in ``mm day-1`` whatever came in. What the source units say decides how
a day is aggregated, so the rule is stated once here:

* an **amount** per time step (convertible to ``mm``, e.g. ERA5's ``tp`` in ``m``, or to
  ``kg m-2``) is summed over the steps of the day;
* a **rate** (convertible to ``mm day-1``, e.g. ``mm/h`` or ``m s-1``, or to ``kg m-2 s-1``) is
  averaged over the steps of the day, which is the daily total per day.

Mass per area becomes depth through the density of liquid water (1 kg m-2 = 1 mm; CF's
"lwe" quantities). Units that are neither, or missing, are refused: guessing would silently
scale the data by 24 or 1000.
"""

from __future__ import annotations

from dataclasses import dataclass

import cf_units

from climdiff.errors import ClimdiffError

PRECIPITATION = "precipitation"
AMOUNT = "amount"
RATE = "rate"
# (target units, kind): depth first, then mass of liquid water per area (numerically the same in mm).
_TARGETS = (("mm", AMOUNT), ("kg m-2", AMOUNT), ("mm day-1", RATE), ("kg m-2 day-1", RATE))
# Names that mark a source variable as precipitation: CF standard names, then common short names (ERA5, CMIP, GPCP).
PRECIPITATION_STANDARD_NAMES = frozenset(
    {
        "precipitation_flux",
        "precipitation_amount",
        "lwe_thickness_of_precipitation_amount",
        "lwe_precipitation_rate",
        "total_precipitation",
    }
)
PRECIPITATION_NAMES = frozenset({"tp", "pr", "precip", "precipitation", "prcp", "prate", "total_precipitation"})


@dataclass(frozen=True)
class PrecipitationUnits:
    """How precipitation in ``source`` units becomes mm day-1 after daily aggregation."""

    source: str
    kind: str  # AMOUNT (per step: sum the day) or RATE (average the day)
    factor: float  # to mm (amount) or to mm day-1 (rate)


def is_precipitation(name: str, attrs: dict[str, object]) -> bool:
    """Whether a source variable is precipitation (by CF standard name, else by its short name)."""
    standard_name = str(attrs.get("standard_name", ""))
    if standard_name:
        return standard_name in PRECIPITATION_STANDARD_NAMES
    return name.lower() in PRECIPITATION_NAMES


def parse_units(units: str, where: str) -> cf_units.Unit:
    """A udunits unit, or a one-line error naming where the bad string came from."""
    try:
        return cf_units.Unit(units)
    except ValueError:
        raise ClimdiffError(f"{where}: cannot parse units {units!r}") from None


def precipitation_units(units: str | None, where: str) -> PrecipitationUnits:
    """Classify precipitation units as an amount per step or a rate, with the factor to mm(/day)."""
    if not units:
        raise ClimdiffError(f"{where}: precipitation has no units attribute; cannot tell an amount from a rate")
    unit = parse_units(units, where)
    for target, kind in _TARGETS:
        if unit.is_convertible(cf_units.Unit(target)):
            return PrecipitationUnits(units, kind, float(unit.convert(1.0, cf_units.Unit(target))))
    raise ClimdiffError(
        f"{where}: units {units!r} are neither a precipitation amount (m, mm, kg m-2) nor a rate "
        "(mm/h, mm day-1, m s-1, kg m-2 s-1)"
    )


def same_units(a: str | None, b: str | None) -> bool:
    """Whether two unit strings mean the same unit (spelling aside)."""
    if a is None or b is None:
        return a == b
    try:
        return cf_units.Unit(a) == cf_units.Unit(b)
    except ValueError:
        return a.strip() == b.strip()
