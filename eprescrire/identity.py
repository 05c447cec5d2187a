"""Who signed: the certificate's identity against what a payload claims.

The name, RPPS and specialty a prescription carries are typed by whoever signed it; only the
certificate's are vouched for by an authority. These helpers compare the two and word the
warnings a verdict carries when they differ, or when the signing time (stated by the signer,
not proved: offline there is no time-stamping authority) is close to the certificate's end.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata

from cryptography import x509

from eprescrire import model

#: Titles and civilities that may precede a name on either side; ignored when comparing.
_TITLES = frozenset(
    {"dr", "docteur", "docteure", "pr", "professeur", "professeure", "m", "mme", "mlle", "mr"}
)
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—'’.,]+")


@functools.lru_cache(maxsize=1024)
def name_tokens(name: str) -> tuple[str, ...]:
    """The words of a person's name, compared without case, accents, punctuation, titles
    (``Dr``, ``Pr``, ``Mme`` …) or order (``MARTIN Claire`` is ``Dr Claire Martin``)."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    words = [w for w in _SEPARATORS.split(plain) if w]
    while words and words[0] in _TITLES:
        words.pop(0)
    return tuple(sorted(words))


def same_name(a: str, b: str) -> bool:
    """Whether two spellings name the same person (see :func:`name_tokens`)."""
    tokens = name_tokens(a)
    return bool(tokens) and tokens == name_tokens(b)


def name_mismatch(certificate_name: str, prescription: model.Prescription) -> str | None:
    """A warning when the prescription's prescriber name is not the certificate's; else None."""
    claimed = prescription.prescriber.name
    if same_name(certificate_name, claimed):
        return None
    return (
        f"the prescriber name in the prescription ({claimed!r}) is not the name in the signing "
        f"certificate ({certificate_name!r}): the certificate's identity is shown"
    )


def expired_since_signing(
    certificate: x509.Certificate, issued_at: dt.datetime, at: dt.datetime
) -> str | None:
    """A warning when the signer's certificate ended between the stated signing time and
    ``at``. The signing time is the signer's own statement: a key whose certificate has
    expired could have signed a back-dated prescription."""
    end = certificate.not_valid_after_utc
    if not issued_at <= end < at:
        return None
    return (
        f"the signer's certificate expired on {end:%Y-%m-%d}, after the stated signing time "
        f"{issued_at:%Y-%m-%d}: that time is stated by the signer and cannot be checked offline"
    )


def not_usable_now(certificate: x509.Certificate, now: dt.datetime) -> str | None:
    """Why ``certificate`` may not sign anything at the real time ``now``, or None."""
    if now > certificate.not_valid_after_utc:
        return (
            f"the signing certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}: "
            "it signs nothing any more, whatever the stated issue date"
        )
    if now < certificate.not_valid_before_utc:
        return (
            "the signing certificate is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d}"
        )
    return None
