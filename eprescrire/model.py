"""The prescription model: frozen, validated on construction.

A :class:`Prescription` only comes from :func:`from_input` (a prescriber's TOML/JSON input,
checked field by field before anything is signed) or :func:`from_payload` (the signed JSON,
checked again on the verifier's side). Both report *every* broken rule at once, each naming
the field and the rule, in a :class:`~eprescrire.errors.ValidationError`.

The signed bytes of a prescription are ``canonical.dumps(to_payload(p))``: a pure function of
the model, so that the compact QR form can rebuild them exactly.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from eprescrire import checkdigits, ids, text
from eprescrire.errors import FieldError, ValidationError

FORMAT_VERSION = 1
NS_REASONS = ("MTE", "EFG", "CIF")  # marge thérapeutique étroite, enfant < 6 ans, contre-indication
MAX_RENEWALS = 11
MAX_NARCOTIC_DAYS = 28
MAX_TREATMENT_DAYS = 365  # 12 months including renewals
MAX_LINES = 40
CLOCK_SKEW = dt.timedelta(minutes=5)
MIN_ISSUE_YEAR, MAX_ISSUE_YEAR = 2000, 2998  # keeps every date computed from it in range
#: ``pack_months``: a pack made for more than a month of treatment, at most three (R.5123-2).
PACK_MONTHS = (2, 3)
#: ``units_per_box``: how many units (gélules, ampoules...) one box of the line holds.
MAX_UNITS_PER_BOX = 999
#: "NS EFG" (arrêté of 12 November 2019): only for a child under six at the issue date.
EFG_MAX_AGE_YEARS = 6

Sex = Literal["F", "M"]


#: A control character other than the line feed (what a non-strict read refuses in text).
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_CONTROL_BYTES = bytes(c for c in range(0x20) if c != 0x0A)  # the same, as UTF-8 bytes
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_PHONE = re.compile(r"[+0-9 .()-]{6,30}")


@dataclass(frozen=True)
class Facility:
    """Where the prescriber practises."""

    name: str
    address: str
    finess: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Prescriber:
    """Who prescribes (as the prescription states it)."""

    name: str
    rpps: str
    specialty: str
    facility: Facility


@dataclass(frozen=True)
class Patient:
    """Who the prescription is for."""

    family_name: str
    given_name: str
    birth_date: dt.date
    sex: Sex | None = None
    ins: str | None = None
    weight_kg: float | None = None


@dataclass(frozen=True)
class Line:
    """One prescribed medicine or product."""

    label: str
    posology: str
    duration_days: int
    quantity: int
    unit: str | None = None
    renewals: int = 0
    substitutable: bool = True
    ns_reason: str | None = None
    ald: bool = False
    narcotic: bool = False
    cip13: str | None = None
    cis: str | None = None
    days_per_dispensing: int | None = None
    #: The presentation is a pack made for this many months of treatment (2 or 3): it may be
    #: dispensed whole although it covers more than a month (R.5123-2).
    pack_months: int | None = None
    #: A contraceptive: up to twelve weeks may be dispensed at once (R.5123-2).
    contraceptive: bool = False
    #: Units (gélules, ampoules...) in one box: the line is then dispensed in units, so that a
    #: narcotic presented late can be given only the remaining days (R.5132-33). ``quantity``
    #: stays in boxes, as prescribed.
    units_per_box: int | None = None

    @property
    def units_per_dispensing(self) -> int:
        """What one dispensing hands over, in the unit the ledger counts: units when the line
        states ``units_per_box``, else boxes."""
        return self.quantity * (self.units_per_box or 1)

    @property
    def total_days(self) -> int:
        """Days of treatment with every renewal (the drug reference checks its limits)."""
        return self.duration_days * (self.renewals + 1)

    @property
    def max_days_at_once(self) -> int:
        """The most days of treatment the law lets this line's presentation go at once,
        before any fractioning: one month, a long pack's months, a contraceptive's 12 weeks."""
        from eprescrire import rules

        return rules.legal_days_at_once(self.pack_months, self.contraceptive)


@dataclass(frozen=True)
class Prescription:
    """A whole prescription, as signed."""

    id: ids.PrescriptionId
    issued_at: dt.datetime  # aware, UTC, whole seconds
    prescriber: Prescriber
    patient: Patient
    lines: tuple[Line, ...]
    notes: str | None = None
    share_opposition: bool = (
        False  # the patient opposed sharing dispensing data with the prescriber
    )
    version: int = field(default=FORMAT_VERSION)

    @property
    def has_ald(self) -> bool:
        return any(line.ald for line in self.lines)


# --------------------------------------------------------------------------------------------
# Validation


class _Checker:
    """Collects every broken rule instead of stopping at the first."""

    def __init__(self, *, strict: bool = False) -> None:
        self.errors: list[FieldError] = []
        # strict: a prescriber's input, held to every rule before it is signed. Signed content
        # (from_payload) keeps the rules it was signed under, so that documents already issued
        # keep verifying; whatever it holds is escaped wherever it is shown (eprescrire.text).
        self.strict = strict

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def table(self, value: Any, path: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.fail(path, "must be a table/object")
            return None
        return value

    def known(self, data: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                self.fail(_join(path, str(key)), "unknown field")

    def text(
        self,
        data: Mapping[str, Any],
        path: str,
        key: str,
        *,
        required: bool = True,
        max_length: int = 200,
        multiline: bool = False,
    ) -> str | None:
        value = data.get(key)
        if (
            not self.strict
            and type(value) is str
            and 0 < len(value) <= max_length
            and value == value.strip()
            and not _CONTROL.search(value)
        ):
            return value  # every rule below holds: the common case, without building a path
        where = _join(path, key)
        if value is None:
            if required:
                self.fail(where, "is required")
            return None
        if not isinstance(value, str):
            self.fail(where, "must be text")
            return None
        if value != value.strip() or not value:
            self.fail(where, "must not be empty or start/end with spaces")
            return None
        if len(value) > max_length:
            self.fail(where, f"is longer than {max_length} characters")
            return None
        if self.strict:
            unsafe = text.unsafe_characters(value, allow_newline=multiline)
            if unsafe:
                self.fail(
                    where,
                    "contains control, bidi or invisible characters "
                    f"({text.describe(unsafe)})"
                    + ("" if multiline or "\n" not in unsafe else "; a line break only in notes"),
                )
                return None
        elif _CONTROL.search(value):
            self.fail(where, "contains control characters")
            return None
        return value

    def integer(
        self,
        data: Mapping[str, Any],
        path: str,
        key: str,
        *,
        low: int,
        high: int,
        required: bool = True,
        default: int | None = None,
    ) -> int | None:
        value = data.get(key)
        if type(value) is int and low <= value <= high:
            return value  # every rule below holds (a bool is not of type int)
        where = _join(path, key)
        if value is None:
            if required:
                self.fail(where, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, "must be a whole number")
            return default
        if not low <= value <= high:
            self.fail(where, f"must be between {low} and {high}")
            return default
        return value

    def flag(self, data: Mapping[str, Any], path: str, key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(_join(path, key), "must be true or false")
            return default
        return value

    def checked(
        self,
        value: str | None,
        where: str,
        validate: Callable[[str], object],
        rule: str,
    ) -> str | None:
        if value is None:
            return None
        try:
            validate(value)
        except ValueError:  # stdnum's ValidationError is one
            self.fail(where, rule)
            return None
        return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _date(checker: _Checker, value: Any, where: str) -> dt.date | None:
    if isinstance(value, dt.datetime):
        checker.fail(where, "must be a date (YYYY-MM-DD), not a date and time")
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    checker.fail(where, "must be a date YYYY-MM-DD")
    return None


def _timestamp(checker: _Checker, value: Any, where: str) -> dt.datetime | None:
    """An aware UTC datetime with whole seconds, as signed: ``2026-11-25T17:30:00Z``."""
    if isinstance(value, str) and _TIMESTAMP.fullmatch(value):
        try:
            moment = dt.datetime.fromisoformat(value[:-1]).replace(tzinfo=dt.UTC)
        except ValueError:
            pass
        else:
            if MIN_ISSUE_YEAR <= moment.year <= MAX_ISSUE_YEAR:
                return moment
    checker.fail(
        where,
        f"must be a UTC time YYYY-MM-DDTHH:MM:SSZ between {MIN_ISSUE_YEAR} and {MAX_ISSUE_YEAR}",
    )
    return None


def _issued_input(checker: _Checker, value: Any, now: dt.datetime) -> dt.datetime | None:
    """The input's optional ``issued``: a date (today or earlier) or a date and time."""
    from eprescrire.rules import PARIS

    if value is None:
        return now.replace(microsecond=0)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=PARIS)
    elif isinstance(value, dt.date):
        if value == now.astimezone(PARIS).date():
            moment = now
        else:
            moment = dt.datetime.combine(value, dt.time(12, 0), tzinfo=PARIS)
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            checker.fail("issued", "must be a date YYYY-MM-DD or an ISO 8601 date and time")
            return None
        if len(value) == 10:
            return _issued_input(checker, parsed.date(), now)
        return _issued_input(checker, parsed, now)
    else:
        checker.fail("issued", "must be a date YYYY-MM-DD or an ISO 8601 date and time")
        return None
    try:
        moment = moment.astimezone(dt.UTC).replace(microsecond=0)
    except (OverflowError, ValueError):  # 9999-12-31T23:59:59-23:59 is past year 9999 in UTC
        checker.fail("issued", f"must be between {MIN_ISSUE_YEAR} and {MAX_ISSUE_YEAR}")
        return None
    if not MIN_ISSUE_YEAR <= moment.year <= MAX_ISSUE_YEAR:
        checker.fail("issued", f"must be between {MIN_ISSUE_YEAR} and {MAX_ISSUE_YEAR}")
        return None
    if moment > now + CLOCK_SKEW:
        checker.fail("issued", "issue date is in the future")
        return None
    return moment


_CIP13 = re.compile(r"3400\d{9}")
_CIS = re.compile(r"\d{8}")
_INS = re.compile(r"[12]\d{4}(\d{2}|2A|2B)\d{8}")
#: Shapes of identifiers whose check character was computed (``as_signed``): what the checks
#: take (:func:`ids.check_rpps`, :func:`_finess`: as printed, upper case), in ASCII digits.
_RPPS_DIGITS = re.compile(r"[0-9]{11}")
_FINESS_AS_PRINTED = re.compile(r"([0-9]{2}|2A|2B)[0-9]{7}")


def _finess(value: str) -> None:
    # Written as printed: the check itself tolerates case and spaces, a prescription does not.
    if ids.check_finess(value) != value:
        raise ValueError("not as printed")


def _cip13(value: str) -> None:
    """``stdnum.ean.validate`` after the shape; ASCII digits are checked without importing
    stdnum (:mod:`eprescrire.checkdigits`), any other digit the way stdnum reads it."""
    if not _CIP13.fullmatch(value):
        raise ValueError("not a CIP13")
    if value.isascii():
        if checkdigits.ean_digit(value[:-1]) != value[-1]:
            raise ValueError("EAN-13 key")
        return
    from stdnum import ean

    ean.validate(value)


def _cis(value: str) -> None:
    if not _CIS.fullmatch(value):
        raise ValueError("not a CIS")


def _ins(value: str) -> None:
    """``stdnum.fr.nir.validate`` after the shape, ASCII checked as :func:`_cip13` does."""
    if not _INS.fullmatch(value):
        raise ValueError("not an INS")
    if value.isascii():
        if checkdigits.nir_key(value) != value[13:]:
            raise ValueError("NIR key")
        return
    from stdnum.fr import nir

    nir.validate(value)


def _facility(c: _Checker, value: Any, path: str) -> Facility | None:
    data = c.table(value, path)
    if data is None:
        return None
    c.known(data, path, {"name", "address", "finess", "phone"})
    name = c.text(data, path, "name")
    address = c.text(data, path, "address", max_length=300)
    finess = c.checked(
        c.text(data, path, "finess", required=False),
        _join(path, "finess"),
        _finess,
        "FINESS must be 9 characters with a valid Luhn key",
    )
    phone = c.text(data, path, "phone", required=False, max_length=30)
    if phone is not None and not _PHONE.fullmatch(phone):
        c.fail(_join(path, "phone"), "must be a telephone number")
    if name is None or address is None:
        return None
    return Facility(name=name, address=address, finess=finess, phone=phone)


def _prescriber(c: _Checker, value: Any) -> Prescriber | None:
    path = "prescriber"
    data = c.table(value, path)
    if data is None:
        return None
    c.known(data, path, {"name", "rpps", "specialty", "facility"})
    name = c.text(data, path, "name", max_length=100)
    rpps = c.checked(
        c.text(data, path, "rpps", max_length=11),
        "prescriber.rpps",
        ids.check_rpps,
        "RPPS must be 11 digits with a valid Luhn key",
    )
    specialty = c.text(data, path, "specialty", max_length=100)
    if "facility" not in data:
        c.fail("prescriber.facility", "is required")
        facility = None
    else:
        facility = _facility(c, data["facility"], "prescriber.facility")
    if None in (name, rpps, specialty, facility):
        return None
    assert name and rpps and specialty and facility
    return Prescriber(name=name, rpps=rpps, specialty=specialty, facility=facility)


def _patient(c: _Checker, value: Any, today: dt.date | None) -> Patient | None:
    path = "patient"
    data = c.table(value, path)
    if data is None:
        return None
    c.known(data, path, {"family_name", "given_name", "birth_date", "sex", "ins", "weight_kg"})
    family = c.text(data, path, "family_name", max_length=100)
    given = c.text(data, path, "given_name", max_length=100)
    birth = None
    if "birth_date" not in data:
        c.fail("patient.birth_date", "is required")
    else:
        birth = _date(c, data["birth_date"], "patient.birth_date")
        if birth is not None and birth.year < 1890:
            c.fail("patient.birth_date", "is before 1890")
            birth = None
        elif birth is not None and today is not None and birth > today:
            c.fail("patient.birth_date", "is in the future")
            birth = None
    sex = data.get("sex")
    if sex is not None and sex not in ("F", "M"):
        c.fail("patient.sex", "must be F or M")
        sex = None
    ins = c.checked(
        c.text(data, path, "ins", required=False, max_length=15),
        "patient.ins",
        _ins,
        "INS/NIR must be 15 characters with a valid key (97 - n mod 97)",
    )
    if ins is not None:
        if sex is not None and ins[0] != ("2" if sex == "F" else "1"):
            c.fail("patient.ins", "first digit does not match the patient's sex")
        if birth is not None and ins[1:3] != f"{birth.year % 100:02d}":
            c.fail("patient.ins", "year of birth does not match patient.birth_date")
        elif (
            birth is not None
            and ins[3:5].isdigit()
            and 1 <= int(ins[3:5]) <= 12  # 20-42 and 50-99 are used when the month is unknown
            and int(ins[3:5]) != birth.month
        ):
            c.fail("patient.ins", "month of birth does not match patient.birth_date")
    weight = data.get("weight_kg")
    if weight is not None:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            c.fail("patient.weight_kg", "must be a number")
            weight = None
        elif not math.isfinite(weight) or not 0.3 <= weight <= 400:
            c.fail("patient.weight_kg", "must be between 0.3 and 400 kg")
            weight = None
        elif round(weight, 2) != weight:
            c.fail("patient.weight_kg", "at most two decimals")
            weight = None
        else:
            weight = int(weight) if float(weight).is_integer() else float(weight)
    if family is None or given is None or birth is None:
        return None
    return Patient(
        family_name=family,
        given_name=given,
        birth_date=birth,
        sex=sex,
        ins=ins,
        weight_kg=weight,
    )


_LINE_FIELDS = {
    "label",
    "posology",
    "duration_days",
    "quantity",
    "unit",
    "renewals",
    "substitutable",
    "ns_reason",
    "ald",
    "narcotic",
    "cip13",
    "cis",
    "days_per_dispensing",
    "pack_months",
    "contraceptive",
    "units_per_box",
}


def _line(c: _Checker, value: Any, path: str) -> Line | None:
    data = c.table(value, path)
    if data is None:
        return None
    c.known(data, path, _LINE_FIELDS)
    before = len(c.errors)
    label = c.text(data, path, "label", max_length=200)
    posology = c.text(data, path, "posology", max_length=500)
    duration = c.integer(data, path, "duration_days", low=1, high=MAX_TREATMENT_DAYS)
    quantity = c.integer(data, path, "quantity", low=1, high=999)
    unit = c.text(data, path, "unit", required=False, max_length=40)
    renewals = c.integer(
        data, path, "renewals", low=0, high=MAX_RENEWALS, required=False, default=0
    )
    substitutable = c.flag(data, path, "substitutable", True)
    ns_reason = data.get("ns_reason")
    if substitutable:
        if ns_reason is not None:
            c.fail(_join(path, "ns_reason"), "only for a non-substitutable line")
    elif ns_reason not in NS_REASONS:
        c.fail(
            _join(path, "ns_reason"),
            "a non-substitutable line needs a reason: MTE, EFG or CIF",
        )
    ald = c.flag(data, path, "ald", False)
    narcotic = c.flag(data, path, "narcotic", False)
    cip13 = c.checked(
        c.text(data, path, "cip13", required=False, max_length=13),
        _join(path, "cip13"),
        _cip13,
        "CIP13 must be 13 digits starting 3400 with a valid EAN-13 key",
    )
    cis = c.checked(
        c.text(data, path, "cis", required=False, max_length=8),
        _join(path, "cis"),
        _cis,
        "CIS must be 8 digits",
    )
    per = c.integer(
        data, path, "days_per_dispensing", low=1, high=MAX_TREATMENT_DAYS, required=False
    )
    units_per_box = c.integer(
        data, path, "units_per_box", low=1, high=MAX_UNITS_PER_BOX, required=False
    )
    if narcotic and duration is not None and duration > MAX_NARCOTIC_DAYS:
        c.fail(
            _join(path, "duration_days"),
            f"a narcotic line is limited to {MAX_NARCOTIC_DAYS} days",
        )
    if narcotic and renewals:
        c.fail(_join(path, "renewals"), "a narcotic prescription cannot be renewed")
    if (
        duration is not None
        and renewals is not None
        and duration * (renewals + 1) > MAX_TREATMENT_DAYS
    ):
        c.fail(_join(path, "renewals"), "total treatment with renewals exceeds 12 months")
    pack_months = data.get("pack_months")
    if pack_months is not None and (
        isinstance(pack_months, bool) or pack_months not in PACK_MONTHS
    ):
        c.fail(
            _join(path, "pack_months"),
            "must be 2 or 3: the months of treatment the pack is made for (omit for a "
            "pack of a month or less)",
        )
        pack_months = None
    contraceptive = c.flag(data, path, "contraceptive", False)
    if per is not None and duration is not None and per > duration:
        c.fail(_join(path, "days_per_dispensing"), "exceeds the line's duration")
    elif c.strict and per is not None:
        from eprescrire import rules

        cap = rules.legal_days_at_once(pack_months, contraceptive)
        if per > cap:
            c.fail(
                _join(path, "days_per_dispensing"),
                f"at most {cap} days at once for this line (R.5123-2): fractioning only lowers "
                f"the one-month cap; only a pack made for 2 or 3 months (pack_months) or a "
                f"contraceptive (contraceptive = true, 12 weeks) goes beyond it",
            )
    if len(c.errors) > before:
        return None
    assert label and posology and duration and quantity and renewals is not None
    return Line(
        label=label,
        posology=posology,
        duration_days=duration,
        quantity=quantity,
        unit=unit,
        renewals=renewals,
        substitutable=substitutable,
        ns_reason=None if substitutable else ns_reason,
        ald=ald,
        narcotic=narcotic,
        cip13=cip13,
        cis=cis,
        days_per_dispensing=per,
        pack_months=pack_months,
        contraceptive=contraceptive,
        units_per_box=units_per_box,
    )


def _lines(c: _Checker, value: Any) -> tuple[Line, ...] | None:
    if not isinstance(value, list):
        c.fail("lines", "is required: a list of prescription lines")
        return None
    if not value:
        c.fail("lines", "needs at least one line")
        return None
    if len(value) > MAX_LINES:
        c.fail("lines", f"at most {MAX_LINES} lines")
        return None
    built = [_line(c, item, f"lines[{n}]") for n, item in enumerate(value, start=1)]
    if any(line is None for line in built):
        return None
    return tuple(line for line in built if line is not None)


_TOP_INPUT = {"issued", "prescriber", "patient", "lines", "notes", "share_opposition"}
_TOP_PAYLOAD = {"version", "id", "issued_at", "prescriber", "patient", "lines", "notes"} | {
    "share_opposition"
}


def _body(
    c: _Checker, data: Mapping[str, Any], today: dt.date | None
) -> tuple[Prescriber | None, Patient | None, tuple[Line, ...] | None, str | None, bool]:
    prescriber = _prescriber(c, data.get("prescriber")) if "prescriber" in data else None
    if "prescriber" not in data:
        c.fail("prescriber", "is required")
    patient = _patient(c, data.get("patient"), today) if "patient" in data else None
    if "patient" not in data:
        c.fail("patient", "is required")
    lines = _lines(c, data.get("lines"))
    notes = c.text(data, "", "notes", required=False, max_length=1000, multiline=True)
    opposition = c.flag(data, "", "share_opposition", False)
    return prescriber, patient, lines, notes, opposition


def from_input(
    data: Any,
    *,
    now: dt.datetime,
    prescription_id: ids.PrescriptionId | None = None,
    source: str | None = None,
) -> Prescription:
    """Validate a prescriber's input (TOML or JSON, already parsed) into a Prescription.

    ``now`` is the issuing clock (aware). On failure, raises
    :class:`~eprescrire.errors.ValidationError` listing every broken rule.
    """
    c = _Checker(strict=True)
    table = c.table(data, "")
    if table is None:
        raise ValidationError(c.errors, source)
    c.known(table, "", _TOP_INPUT)
    issued_at = _issued_input(c, table.get("issued"), now)
    from eprescrire.rules import local_date

    today = local_date(now)
    prescriber, patient, lines, notes, opposition = _body(c, table, today)
    if c.errors:
        raise ValidationError(c.errors, source)
    assert issued_at and prescriber and patient and lines
    if patient.birth_date > local_date(issued_at):
        raise ValidationError([FieldError("patient.birth_date", "is after the issue date")], source)
    _check_efg(c, patient, lines, local_date(issued_at))
    if c.errors:
        raise ValidationError(c.errors, source)
    return Prescription(
        id=prescription_id or ids.new_id(),
        issued_at=issued_at,
        prescriber=prescriber,
        patient=patient,
        lines=lines,
        notes=notes,
        share_opposition=opposition,
    )


def _check_efg(c: _Checker, patient: Patient, lines: tuple[Line, ...], issued: dt.date) -> None:
    """NS EFG is only for a child under six on the issue date (arrêté of 12 November 2019)."""
    from eprescrire.rules import add_months

    sixth_birthday = add_months(patient.birth_date, 12 * EFG_MAX_AGE_YEARS)
    for number, line in enumerate(lines, start=1):
        if line.ns_reason == "EFG" and issued >= sixth_birthday:
            c.fail(
                f"lines[{number}].ns_reason",
                f"EFG (enfant de moins de {EFG_MAX_AGE_YEARS} ans) is only for a child under "
                f"{EFG_MAX_AGE_YEARS} on the issue date; the patient turned "
                f"{EFG_MAX_AGE_YEARS} on {sixth_birthday.isoformat()}",
            )


def from_payload(data: Any) -> Prescription:
    """Rebuild a Prescription from its signed JSON form, checking every rule again.

    On failure, raises :class:`~eprescrire.errors.ValidationError`.
    """
    c = _Checker()
    table = c.table(data, "")
    if table is None:
        raise ValidationError(c.errors)
    c.known(table, "", _TOP_PAYLOAD)
    if table.get("version") != FORMAT_VERSION:
        c.fail("version", f"unsupported format version (expected {FORMAT_VERSION})")
    raw_id = table.get("id")
    if not isinstance(raw_id, str) or not ids.is_canonical(raw_id):
        c.fail("id", "is not a valid prescription identifier")
    issued_at = _timestamp(c, table.get("issued_at"), "issued_at")
    prescriber, patient, lines, notes, opposition = _body(c, table, None)
    if c.errors:
        raise ValidationError(c.errors)
    assert issued_at and prescriber and patient and lines and isinstance(raw_id, str)
    return Prescription(
        id=ids.PrescriptionId(raw_id),
        issued_at=issued_at,
        prescriber=prescriber,
        patient=patient,
        lines=lines,
        notes=notes,
        share_opposition=opposition,
    )


def as_signed(p: Prescription, size: int, *, keys_computed: bool = False) -> bool:
    """True when ``from_payload(canonical.loads(signed_bytes(p)))`` accepts the signed form of
    ``p`` (``size`` bytes long) and rebuilds a prescription equal to ``p`` with the same signed
    bytes: every rule of :func:`from_payload`, checked on the model itself rather than on JSON
    parsed again. False when a rule fails *or* the value is not exactly of the types
    :func:`from_payload` builds: the caller then takes that long way, which names the problem.

    ``keys_computed``: the prescription's identifier and the check characters of its RPPS,
    FINESS, INS and CIP13 were computed from the rest of them by whoever built it (the QR
    decoder, which never carries them): only their shapes are checked, not that arithmetic.
    """
    from eprescrire.canonical import MAX_DOCUMENT_BYTES  # a module: no importlib code runs

    if size > MAX_DOCUMENT_BYTES or type(p) is not Prescription:
        return False
    issued, prescriber, patient, lines = p.issued_at, p.prescriber, p.patient, p.lines
    if not (
        type(p.version) is int
        and p.version == FORMAT_VERSION
        and type(p.id) is str
        and (keys_computed or ids.is_canonical(p.id))
        and type(issued) is dt.datetime
        and issued.tzinfo is dt.UTC
        and issued.microsecond == 0
        and MIN_ISSUE_YEAR <= issued.year <= MAX_ISSUE_YEAR
        and type(p.share_opposition) is bool
        and type(prescriber) is Prescriber
        and type(prescriber.facility) is Facility
        and type(patient) is Patient
        and type(lines) is tuple
        and 0 < len(lines) <= MAX_LINES
    ):
        return False
    facility = prescriber.facility
    # Every text field and its longest length, optional ones when present: _Checker.text's
    # first test (text, not empty, no surrounding space, not too long, no control character).
    texts: list[tuple[object, int]] = [
        (prescriber.name, 100),
        (prescriber.rpps, 11),
        (prescriber.specialty, 100),
        (facility.name, 200),
        (facility.address, 300),
        (patient.family_name, 100),
        (patient.given_name, 100),
    ]
    for value, longest in (
        (p.notes, 1000),
        (facility.finess, 200),
        (facility.phone, 30),
        (patient.ins, 15),
    ):
        if value is not None:
            texts.append((value, longest))
    cip13s: list[str] = []
    ciss: list[str] = []
    for line in lines:
        if type(line) is not Line or not _line_as_signed(line):
            return False
        texts += ((line.label, 200), (line.posology, 500))
        if line.unit is not None:
            texts.append((line.unit, 40))
        if line.cip13 is not None:
            texts.append((line.cip13, 13))
            cip13s.append(line.cip13)
        if line.cis is not None:
            texts.append((line.cis, 8))
            ciss.append(line.cis)
    for field_text, longest in texts:
        if (
            type(field_text) is not str
            or not 0 < len(field_text) <= longest
            or field_text != field_text.strip()
        ):
            return False
    # _CONTROL over them all: in UTF-8 those characters are single bytes no other character's
    # encoding holds (a surrogate, which the signed bytes could not hold anyway, neither).
    joined = "".join([t for t, _ in texts]).encode("utf-8", "surrogatepass")  # type: ignore[misc]
    if len(joined.translate(None, _CONTROL_BYTES)) != len(joined):
        return False
    # Every text is a str from here on. The shapes below are those of the patterns named,
    # written with str methods (isdecimal: \d, Unicode category Nd; isascii and isdigit:
    # [0-9]).
    if keys_computed:
        # What the keys were computed from has the shape the checks below read them in.
        rpps = prescriber.rpps
        identifiers = (
            len(rpps) == 11  # _RPPS_DIGITS
            and rpps.isascii()
            and rpps.isdigit()
            and (facility.finess is None or _FINESS_AS_PRINTED.fullmatch(facility.finess))
            and (patient.ins is None or _INS.fullmatch(patient.ins) is not None)
            and all(  # _CIP13
                len(c) == 13 and c.startswith("3400") and c[4:].isdecimal() for c in cip13s
            )
        )
    else:
        identifiers = (
            _passes(ids.check_rpps, prescriber.rpps)
            and (facility.finess is None or _passes(_finess, facility.finess))
            and (patient.ins is None or _passes(_ins, patient.ins))
            and all(_passes(_cip13, c) for c in cip13s)
        )
    return bool(
        identifiers
        and (facility.phone is None or _PHONE.fullmatch(facility.phone) is not None)
        and _patient_as_signed(patient)
        and all(len(c) == 8 and c.isdecimal() for c in ciss)  # _CIS
    )


def _passes(validate: Callable[[str], object], value: str) -> bool:
    try:
        validate(value)
    except ValueError:
        return False
    return True


def _patient_as_signed(patient: Patient) -> bool:
    """The patient's rules, its text fields already checked."""
    birth, sex, ins, weight = patient.birth_date, patient.sex, patient.ins, patient.weight_kg
    if not (
        type(birth) is dt.date
        and birth.year >= 1890
        and (sex is None or (type(sex) is str and sex in ("F", "M")))
    ):
        return False
    if ins is not None:  # its shape and key are checked by the caller
        if sex is not None and ins[0] != ("2" if sex == "F" else "1"):
            return False
        if ins[1:3] != f"{birth.year % 100:02d}":
            return False
        if ins[3:5].isdigit() and 1 <= int(ins[3:5]) <= 12 and int(ins[3:5]) != birth.month:
            return False
    if weight is None or (type(weight) is int and 0.3 <= weight <= 400):
        return True
    if type(weight) is not float or weight.is_integer():  # 70.0 would be read back as 70
        return False
    shown = repr(weight)  # what json.dumps writes, and canonical.loads reads back
    return (
        math.isfinite(weight)
        and 0.3 <= weight <= 400
        and round(weight, 2) == weight
        and len(shown) <= 17
        and "e" not in shown
    )


def _line_as_signed(line: Line) -> bool:
    """A line's rules but its text fields' and identifiers' (checked by the caller)."""
    duration, renewals, per = line.duration_days, line.renewals, line.days_per_dispensing
    return (
        type(duration) is int
        and 1 <= duration <= MAX_TREATMENT_DAYS
        and type(line.quantity) is int
        and 1 <= line.quantity <= 999
        and type(renewals) is int
        and 0 <= renewals <= MAX_RENEWALS
        and type(line.substitutable) is bool
        and (
            line.ns_reason is None
            if line.substitutable
            else type(line.ns_reason) is str and line.ns_reason in NS_REASONS
        )
        and type(line.ald) is bool
        and type(line.narcotic) is bool
        and (per is None or (type(per) is int and 1 <= per <= duration))
        and (
            line.units_per_box is None
            or (type(line.units_per_box) is int and 1 <= line.units_per_box <= MAX_UNITS_PER_BOX)
        )
        and (not line.narcotic or (duration <= MAX_NARCOTIC_DAYS and renewals == 0))
        and duration * (renewals + 1) <= MAX_TREATMENT_DAYS
        and (
            line.pack_months is None
            or (type(line.pack_months) is int and line.pack_months in PACK_MONTHS)
        )
        and type(line.contraceptive) is bool
    )


# --------------------------------------------------------------------------------------------
# Serialisation


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def format_timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_payload(p: Prescription) -> dict[str, Any]:
    """The JSON object that is signed; ``canonical.dumps`` of it gives the signed bytes."""
    f = p.prescriber.facility
    return _drop_none(
        {
            "version": p.version,
            "id": p.id,
            "issued_at": format_timestamp(p.issued_at),
            "prescriber": {
                "name": p.prescriber.name,
                "rpps": p.prescriber.rpps,
                "specialty": p.prescriber.specialty,
                "facility": _drop_none(
                    {"name": f.name, "address": f.address, "finess": f.finess, "phone": f.phone}
                ),
            },
            "patient": _drop_none(
                {
                    "family_name": p.patient.family_name,
                    "given_name": p.patient.given_name,
                    "birth_date": p.patient.birth_date.isoformat(),
                    "sex": p.patient.sex,
                    "ins": p.patient.ins,
                    "weight_kg": p.patient.weight_kg,
                }
            ),
            "lines": [
                _drop_none(
                    {
                        "label": line.label,
                        "posology": line.posology,
                        "duration_days": line.duration_days,
                        "quantity": line.quantity,
                        "unit": line.unit,
                        "renewals": line.renewals,
                        "substitutable": line.substitutable,
                        "ns_reason": line.ns_reason,
                        "ald": line.ald,
                        "narcotic": line.narcotic,
                        "cip13": line.cip13,
                        "cis": line.cis,
                        "days_per_dispensing": line.days_per_dispensing,
                        # Omitted when unset: documents signed before these fields existed
                        # keep their exact signed bytes.
                        "pack_months": line.pack_months,
                        "contraceptive": line.contraceptive or None,
                        "units_per_box": line.units_per_box,
                    }
                )
                for line in p.lines
            ],
            "notes": p.notes,
            "share_opposition": p.share_opposition,
        }
    )


def signed_bytes(p: Prescription) -> bytes:
    """The exact bytes that are signed (the JWS payload before base64url)."""
    from eprescrire import canonical

    return canonical.dumps(to_payload(p))


@dataclass(frozen=True)
class SignedForm:
    """A prescription with its signed bytes, ``payload == signed_bytes(prescription)``: made
    by :func:`signed_form`, so that a verifier holding one need not serialise it again."""

    prescription: Prescription
    payload: bytes
    #: The identifier and the check characters were computed by its maker (``as_signed``).
    keys_computed: bool = False


def signed_form(p: Prescription, *, keys_computed: bool = False) -> SignedForm:
    return SignedForm(p, signed_bytes(p), keys_computed)
