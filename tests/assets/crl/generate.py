"""Generate the CRL corpus: CRLs that must not be taken as an authority's full CRL, and CRLs
past their next update.

Every CRL here is validly signed by the corpus authority (``authority.pem``). The trust store
in ``trust/`` holds that authority and its full CRL, which revokes the prescriber who signed
``revoked.json``; ``rx.json`` is signed by a prescriber in good standing. Each partial CRL
lists nothing and carries a higher CRL number: taken as the full CRL, it would let the revoked
prescriber verify VALIDE. ``trust add`` must refuse it (manifest: ``refused``).

The stale CRLs (manifest: ``stale``) are full CRLs whose next update is ``days_late`` days
before the verification time: within the trust store's grace (default 7 days) the verdict
stands with a warning, beyond it the verdict is ``revocation_unknown``.

Run ``python tests/assets/crl/generate.py [DIR]`` to rebuild it (default: this folder). The
keys are thrown away: only certificates, CRLs and documents are written.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from eprescrire import keys, model, signing
from eprescrire.trust import TrustStore

HERE = Path(__file__).resolve().parent
AT = "2026-11-25T12:00:00+01:00"
NOW = dt.datetime.fromisoformat(AT).astimezone(dt.UTC)
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
RPPS = "10003456786"

INPUT = {
    "prescriber": {
        "name": "Dr Corpus Test",
        "rpps": RPPS,
        "specialty": "Médecine générale",
        "facility": {"name": "Cabinet de test", "address": "1 rue du Test, 75001 Paris"},
    },
    "patient": {"family_name": "Testeur", "given_name": "Alice", "birth_date": "1970-01-01"},
    "lines": [
        {
            "label": "PARACÉTAMOL 500 mg, gélule",
            "posology": "2 gélules si douleur",
            "duration_days": 5,
            "quantity": 1,
        }
    ],
}


def _crl(
    authority: keys.Credentials,
    *,
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    revoked: list[int] = (),  # type: ignore[assignment]
    extensions: list[tuple[x509.ExtensionType, bool]] = (),  # type: ignore[assignment]
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(START).build()
        )
    crl = builder.sign(authority.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def _point(**flags: object) -> x509.IssuingDistributionPoint:
    values: dict[str, object] = {
        "full_name": None,
        "relative_name": None,
        "only_contains_user_certs": False,
        "only_contains_ca_certs": False,
        "only_some_reasons": None,
        "indirect_crl": False,
        "only_contains_attribute_certs": False,
    }
    values.update(flags)
    return x509.IssuingDistributionPoint(**values)  # type: ignore[arg-type]


def generate(out: Path) -> dict[str, object]:
    if (out / "trust").exists():
        shutil.rmtree(out / "trust")
    for old in [*out.glob("*.json"), *out.glob("*.pem")]:
        old.unlink()
    authority = keys.new_authority("CRL corpus authority", not_before=START, days=7300)

    def prescriber() -> keys.Credentials:
        return keys.new_prescriber(
            authority,
            name="Dr Corpus Test",
            rpps=RPPS,
            specialty="Médecine générale",
            not_before=START,
            days=3650,
        )

    good, revoked = prescriber(), prescriber()
    (out / "authority.pem").write_bytes(
        authority.certificate.public_bytes(serialization.Encoding.PEM)
    )
    store = TrustStore.create(out / "trust")
    store.add_certificate(authority.certificate, now=NOW)
    store.add_crl(
        keys.new_crl(
            authority, revoked={revoked.certificate.serial_number: START}, now=START, days=7300
        )
    )
    issued = NOW - dt.timedelta(days=2)
    for name, credentials in (("rx.json", good), ("revoked.json", revoked)):
        data = json.loads(json.dumps(INPUT))
        data["issued"] = issued.isoformat()
        document = signing.sign(model.from_input(data, now=NOW), credentials)
        (out / name).write_bytes(document.to_json_bytes())

    fresh = {"this_update": NOW - dt.timedelta(days=1), "next_update": NOW + dt.timedelta(days=30)}
    refused: dict[str, dict[str, str]] = {}

    def partial(name: str, what: str, extensions: list[tuple[x509.ExtensionType, bool]]) -> None:
        (out / name).write_bytes(_crl(authority, number=99, extensions=extensions, **fresh))
        refused[name] = {"attack": what}

    partial("delta.pem", "a delta CRL (lists only changes)", [(x509.DeltaCRLIndicator(1), True)])
    partial(
        "only-ca-certs.pem",
        "issuing distribution point: CA certificates only",
        [(_point(only_contains_ca_certs=True), True)],
    )
    partial(
        "only-user-certs.pem",
        "issuing distribution point: end-entity certificates only",
        [(_point(only_contains_user_certs=True), True)],
    )
    partial(
        "only-some-reasons.pem",
        "issuing distribution point: key compromise only",
        [(_point(only_some_reasons=frozenset({x509.ReasonFlags.key_compromise})), True)],
    )
    partial(
        "indirect.pem",
        "issuing distribution point: an indirect CRL",
        [(_point(indirect_crl=True), True)],
    )
    partial(
        "unknown-critical-extension.pem",
        "a critical extension this verifier does not understand",
        [
            (
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.1"), b"\x05\x00"
                ),
                True,
            )
        ],
    )
    (out / "not-a-crl.pem").write_bytes(
        b"-----BEGIN X509 CRL-----\nTm90IGEgQ1JMIGF0IGFsbA==\n-----END X509 CRL-----\n"
    )
    refused["not-a-crl.pem"] = {"attack": "says X509 CRL but is not one"}

    stale: dict[str, dict[str, object]] = {}
    for name, late in (("year-old.pem", 366), ("three-days-late.pem", 3)):
        due = NOW - dt.timedelta(days=late)
        (out / name).write_bytes(
            _crl(
                authority,
                number=2,
                this_update=due - dt.timedelta(days=30),
                next_update=due,
                revoked=[revoked.certificate.serial_number],
            )
        )
        stale[name] = {"days_late": late}

    manifest = {"at": AT, "refused": refused, "stale": stale}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return manifest


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
