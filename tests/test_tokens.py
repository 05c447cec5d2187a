"""Signing with keys on a PKCS#11 token (SoftHSM2): issue, print, scan, verify; key
protection on the token; independent JOSE verification; one-line errors that never show the PIN.

Each test makes its own SoftHSM2 token in a temporary directory (``SOFTHSM2_CONF``) holding an
EC P-256 and an RSA-2048 key pair made by OpenSC's ``pkcs11-tool``. The commands run as
subprocesses, as a user runs them: a PKCS#11 library is initialised once per process.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import EXAMPLES, KEYS

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "492817"
SO_PIN = "83726151"
SCRIPT = Path(sys.executable).parent / "eprescrire"
RPPS = "10003456786"  # the reference prescription's prescriber


@dataclass
class Token:
    env: dict[str, str]
    trust: Path
    authority: Path
    root: Path

    def run(
        self, *args: object, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *(str(a) for a in args)],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            check=False,
            timeout=120,
        )

    def tool(self, *args: str) -> str:
        result = subprocess.run(
            ["pkcs11-tool", "--module", str(MODULE), "--token-label", "CPS", *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def attributes(self, label: str) -> dict[str, object]:
        """CKA_* of the private key ``label``, read through python-pkcs11 in a subprocess."""
        code = (
            "import json, sys, pkcs11\n"
            "from pkcs11 import Attribute, ObjectClass\n"
            f"lib = pkcs11.lib({str(MODULE)!r})\n"
            "token = lib.get_token(token_label='CPS')\n"
            f"with token.open(user_pin={PIN!r}) as s:\n"
            f"    k = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label={label!r})\n"
            "    print(json.dumps({'extractable': k[Attribute.EXTRACTABLE],"
            " 'sensitive': k[Attribute.SENSITIVE],"
            " 'never_extractable': k[Attribute.NEVER_EXTRACTABLE],"
            " 'always_sensitive': k[Attribute.ALWAYS_SENSITIVE],"
            " 'key_type': int(k.key_type)}))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=self.env, check=True
        )
        return json.loads(result.stdout)  # type: ignore[no-any-return]


def uri(label: str, **extra: str) -> str:
    text = f"pkcs11:token=CPS;object={label}"
    if extra:
        text += "?" + "&".join(f"{k}={v}" for k, v in extra.items())
    return text


@pytest.fixture()
def token(tmp_path: Path) -> Token:
    """A fresh SoftHSM2 token 'CPS' with an EC P-256 key 'cps-ec' and an RSA-2048 key
    'cps-rsa', the demo authority, and a trust store accepting ES256, PS256 and RS256."""
    for tool in ("softhsm2-util", "pkcs11-tool"):
        assert shutil.which(tool), f"{tool} missing: run `make test` (scripts/system-deps.sh)"
    assert MODULE.exists(), "SoftHSM2 missing: run `make test` (scripts/system-deps.sh)"
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n"
    )
    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(conf),
        "EPRESCRIRE_PKCS11_MODULE": str(MODULE),
        "EPRESCRIRE_PIN": PIN,
        "EPRESCRIRE_PASSPHRASE": "demo-only",
        "EPRESCRIRE_HOME": str(tmp_path / "home"),
    }
    for name in ("EPRESCRIRE_RSA_ALGORITHM", "EPRESCRIRE_PKCS11_CERT", "EPRESCRIRE_TRUST"):
        env.pop(name, None)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "CPS", "--pin", PIN,
         "--so-pin", SO_PIN],
        capture_output=True, env=env, check=True, timeout=60,
    )  # fmt: skip
    authority = tmp_path / "authority.p12"
    shutil.copyfile(KEYS / "demo-authority.p12", authority)
    authority.chmod(0o600)
    trust = tmp_path / "trust"
    shutil.copytree(KEYS / "demo-trust", trust)
    (trust / "trust.toml").write_text('algorithms = ["ES256", "PS256", "RS256"]\n')
    made = Token(env=env, trust=trust, authority=authority, root=tmp_path)
    login = ["--login", "--pin", PIN, "--keypairgen"]
    made.tool(*login, "--key-type", "EC:prime256v1", "--label", "cps-ec", "--id", "01")
    made.tool(*login, "--key-type", "rsa:2048", "--label", "cps-rsa", "--id", "02")
    return made


def certify(token: Token, label: str) -> subprocess.CompletedProcess[str]:
    return token.run(
        "keys", "prescriber", "--authority", token.authority, "--name", "Dr Claire Martin",
        "--rpps", RPPS, "--specialty", "Médecine générale", "--key", uri(label),
        "--out", token.root / f"{label}.pem", "--trust", token.trust,
    )  # fmt: skip


def issue(token: Token, label: str, name: str, **env: str) -> subprocess.CompletedProcess[str]:
    return token.run(
        "issue", EXAMPLES / "reference.toml", "--key", uri(label),
        "--out", token.root / f"{name}.json", "--pdf", token.root / f"{name}.pdf",
        env=env,
    )  # fmt: skip


def rasterise(pdf: Path, png: Path) -> None:
    """Print and scan: the PDF rendered at 300 dpi to a grey PNG, as a flatbed scanner gives."""
    import pypdfium2 as pdfium

    pdfium.PdfDocument(pdf)[0].render(scale=300 / 72, grayscale=True).to_pil().save(png)


def signed(token: Token, name: str) -> dict[str, object]:
    return json.loads((token.root / f"{name}.json").read_text())  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# The flow


@pytest.mark.parametrize(
    ("label", "alg", "prefix"),
    [("signature", "ES256", "RX1:"), ("cps-rsa", "PS256", "RX2:")],
    ids=["ec-created-on-token", "rsa-2048-cps"],
)
def test_issue_print_scan_verify_with_a_token_key(
    token: Token, label: str, alg: str, prefix: str
) -> None:
    made = certify(token, label)
    assert made.returncode == 0, made.stderr
    issued = issue(token, label, "rx")
    assert issued.returncode == 0, issued.stderr
    document = signed(token, "rx")
    header = json.loads(base64.urlsafe_b64decode(str(document["jws"]).split(".")[0] + "=="))
    assert header["alg"] == alg
    qr_text = token.run("qr", token.root / "rx.json", "--out", token.root / "rx.svg")
    assert qr_text.returncode == 0, qr_text.stderr
    rasterise(token.root / "rx.pdf", token.root / "scan.png")
    verified = token.run("verify", token.root / "scan.png", "--trust", token.trust, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    verdict = json.loads(verified.stdout)
    assert verdict["status"] == "valid" and verdict["id"] == document["id"]
    assert verdict["signer"]["rpps"] == RPPS
    from eprescrire import qr, signing

    loaded = signing.load_document((token.root / "rx.json").read_bytes())
    assert qr.encode(loaded).startswith(prefix)


def test_key_created_on_the_token_never_leaves_it(token: Token) -> None:
    made = certify(token, "signature")
    assert made.returncode == 0, made.stderr
    attributes = token.attributes("signature")
    assert attributes["extractable"] is False and attributes["sensitive"] is True
    assert attributes["never_extractable"] is True and attributes["always_sensitive"] is True
    assert attributes["key_type"] == 3  # CKK_EC
    # The certificate was written onto the token beside the key, and the signer finds it there.
    assert "Certificate Object" in token.tool("--list-objects", "--type", "cert")
    assert issue(token, "signature", "rx").returncode == 0
    # The RSA key made by pkcs11-tool is also kept sensitive by the token.
    rsa = token.attributes("cps-rsa")
    assert rsa["sensitive"] is True and rsa["extractable"] is False


def test_an_existing_rsa_key_is_used_as_it_is(token: Token) -> None:
    before = token.tool("--list-objects", "--type", "privkey")
    assert certify(token, "cps-rsa").returncode == 0
    assert token.tool("--list-objects", "--type", "privkey") == before
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    certificate = x509.load_pem_x509_certificate((token.root / "cps-rsa.pem").read_bytes())
    public = certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048


@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_joserfc_verifies_the_rsa_jws_with_the_certificate_alone(token: Token, alg: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from joserfc import jws as jose_jws
    from joserfc.jwk import RSAKey

    assert certify(token, "cps-rsa").returncode == 0
    issued = issue(token, "cps-rsa", "rx", EPRESCRIRE_RSA_ALGORITHM=alg)
    assert issued.returncode == 0, issued.stderr
    certificate = x509.load_pem_x509_certificate((token.root / "cps-rsa.pem").read_bytes())
    pem = certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token_text = str(signed(token, "rx")["jws"])
    result = jose_jws.deserialize_compact(token_text, RSAKey.import_key(pem), algorithms=[alg])
    assert result.protected["alg"] == alg
    other = "RS256" if alg == "PS256" else "PS256"
    with pytest.raises(Exception):  # noqa: B017 - joserfc raises its own error types
        jose_jws.deserialize_compact(token_text, RSAKey.import_key(pem), algorithms=[other])
    # And eprescrire accepts it only where the trust store pins that algorithm.
    (token.trust / "trust.toml").write_text(f'algorithms = ["{other}"]\n')
    refused = token.run("verify", token.root / "rx.json", "--trust", token.trust, "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["reasons"][0]["code"] == "signature_invalid"


def test_cancel_and_status_with_a_token_key(token: Token) -> None:
    assert certify(token, "cps-rsa").returncode == 0
    assert issue(token, "cps-rsa", "rx").returncode == 0
    ledger = token.root / "ledger.db"
    cancelled = token.run(
        "cancel", token.root / "rx.json", "--key", uri("cps-rsa"), "--ledger", ledger,
        "--trust", token.trust, "--reason", "erreur de posologie",
    )  # fmt: skip
    assert cancelled.returncode == 0, cancelled.stderr
    status = token.run(
        "status", str(signed(token, "rx")["id"]), "--ledger", ledger, "--as-prescriber",
        "--key", uri("cps-rsa"), "--json",
    )  # fmt: skip
    assert status.returncode in (0, 1), status.stderr
    assert "cancel" in status.stdout


# --------------------------------------------------------------------------------------------
# Errors: exit 4, one line, never the PIN


def _one_line_without_pin(result: subprocess.CompletedProcess[str], *pins: str) -> str:
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for pin in (PIN, *pins):
        assert pin not in result.stdout and pin not in result.stderr
    return lines[0]


def test_wrong_pin(token: Token) -> None:
    assert certify(token, "cps-ec").returncode == 0
    line = _one_line_without_pin(issue(token, "cps-ec", "rx", EPRESCRIRE_PIN="000000"), "000000")
    assert "wrong PIN" in line
    pin_file = token.root / "pin.txt"
    pin_file.write_text("111111\n")
    result = token.run(
        "issue", EXAMPLES / "reference.toml", "--key", uri("cps-ec"), "--pin-file", pin_file,
        "--out", token.root / "rx2.json",
    )  # fmt: skip
    assert "wrong PIN" in _one_line_without_pin(result, "111111")


def test_pin_file_and_no_pin(token: Token) -> None:
    assert certify(token, "cps-ec").returncode == 0
    pin_file = token.root / "pin.txt"
    pin_file.write_text(PIN + "\n")
    env = {**token.env}
    env.pop("EPRESCRIRE_PIN")
    result = subprocess.run(
        [str(SCRIPT), "issue", str(EXAMPLES / "reference.toml"), "--key", uri("cps-ec"),
         "--pin-file", str(pin_file), "--out", str(token.root / "rx.json")],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [str(SCRIPT), "issue", str(EXAMPLES / "reference.toml"), "--key", uri("cps-ec"),
         "--out", str(token.root / "rx2.json")],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert "EPRESCRIRE_PIN" in _one_line_without_pin(result)


def test_missing_token(token: Token) -> None:
    result = token.run(
        "issue", EXAMPLES / "reference.toml", "--key", "pkcs11:token=ABSENT;object=cps-ec",
        "--out", token.root / "rx.json",
    )  # fmt: skip
    assert "no PKCS#11 token matches token=ABSENT" in _one_line_without_pin(result)


def test_missing_module_says_what_to_install(token: Token) -> None:
    result = token.run(
        "issue", EXAMPLES / "reference.toml", "--key", uri("cps-ec"),
        "--out", token.root / "rx.json",
        env={"EPRESCRIRE_PKCS11_MODULE": str(token.root / "nowhere" / "libsofthsm2.so")},
    )  # fmt: skip
    line = _one_line_without_pin(result)
    assert "not found" in line and "apt-get install softhsm2" in line
    env = {**token.env}
    env.pop("EPRESCRIRE_PKCS11_MODULE")
    result = subprocess.run(
        [str(SCRIPT), "issue", str(EXAMPLES / "reference.toml"), "--key", uri("cps-ec"),
         "--out", str(token.root / "rx.json")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert "EPRESCRIRE_PKCS11_MODULE" in _one_line_without_pin(result)


def test_key_of_the_wrong_type(token: Token) -> None:
    login = ["--login", "--pin", PIN, "--keypairgen"]
    token.tool(*login, "--key-type", "EC:secp384r1", "--label", "p384", "--id", "03")
    token.tool(*login, "--key-type", "rsa:1024", "--label", "rsa1024", "--id", "04")
    for label, expected in (("p384", "another elliptic curve"), ("rsa1024", "1024 bits")):
        result = token.run(
            "issue", EXAMPLES / "reference.toml", "--key", uri(label),
            "--out", token.root / f"{label}.json",
        )  # fmt: skip
        assert expected in _one_line_without_pin(result)
        made = certify(token, label)
        assert expected in _one_line_without_pin(made)
    result = token.run(
        "issue", EXAMPLES / "reference.toml", "--key", uri("no-such-key"),
        "--out", token.root / "x.json",
    )  # fmt: skip
    assert "no private key" in _one_line_without_pin(result)


def test_no_certificate_for_the_key(token: Token) -> None:
    result = issue(token, "cps-ec", "rx")
    assert "no certificate" in _one_line_without_pin(result)
    # A certificate file beside the token does: certify, then remove it from the token.
    assert certify(token, "cps-ec").returncode == 0
    token.tool("--login", "--pin", PIN, "--delete-object", "--type", "cert", "--id", "01")
    assert "no certificate" in _one_line_without_pin(issue(token, "cps-ec", "rx"))
    beside = issue(token, "cps-ec", "rx", EPRESCRIRE_PKCS11_CERT=str(token.root / "cps-ec.pem"))
    assert beside.returncode == 0, beside.stderr


def test_pin_in_the_uri_is_refused_without_echoing_it(token: Token) -> None:
    result = token.run(
        "issue", EXAMPLES / "reference.toml", "--key", uri("cps-ec", **{"pin-value": "987123"}),
        "--out", token.root / "rx.json",
    )  # fmt: skip
    assert result.returncode == 2
    assert "987123" not in result.stdout + result.stderr
    assert "pin-value" in result.stderr


# --------------------------------------------------------------------------------------------
# URI parsing (no token needed)


def test_uri_parsing() -> None:
    from eprescrire import tokens
    from eprescrire.errors import UsageError

    parsed = tokens.parse_uri(
        "pkcs11:token=CPS%20Card;object=sig;id=%01%02;type=private;serial=AB12"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin"
    )
    assert parsed.token == "CPS Card" and parsed.object == "sig" and parsed.id == b"\x01\x02"
    assert parsed.serial == "AB12" and parsed.module_path == "/usr/lib/softhsm/libsofthsm2.so"
    assert parsed.pin_source == "file:/run/pin"
    for bad in (
        "pkcs11:token=A;object=b?pin-value=1234",
        "pkcs11:token=A;bogus=1",
        "pkcs11:token=A;type=cert",
        "pkcs11:token=A;token=B",
        "pkcs11:token",
        "pkcs11:token=A?module-name=softhsm2",
        "file:/tmp/key.p12",
    ):
        with pytest.raises(UsageError) as error:
            tokens.parse_uri(bad)
        assert "1234" not in str(error.value)


def test_authority_on_a_token(token: Token) -> None:
    """The authority's key on the token too: it signs the prescriber certificate and the CRLs."""
    made = token.run("keys", "authority", "--name", "CA token", "--out", token.root / "ca",
                     "--key", uri("authority"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert not (token.root / "ca.p12").exists()
    assert token.attributes("authority")["extractable"] is False
    trust = token.root / "trust-ca"
    for sub in ("authorities", "crls", "signers"):
        (trust / sub).mkdir(parents=True)
    (trust / "trust.toml").write_text('algorithms = ["ES256", "PS256"]\n')
    assert token.run("trust", "add", token.root / "ca.pem", "--trust", trust).returncode == 0
    assert token.run("trust", "crl", token.root / "ca.crl.pem", "--trust", trust).returncode == 0
    certified = token.run(
        "keys", "prescriber", "--authority", uri("authority"), "--name", "Dr Claire Martin",
        "--rpps", RPPS, "--specialty", "Médecine générale", "--key", uri("cps-rsa"),
        "--out", token.root / "rsa.pem", "--trust", trust,
    )  # fmt: skip
    assert certified.returncode == 0, certified.stderr
    assert issue(token, "cps-rsa", "rx").returncode == 0
    verified = token.run("verify", token.root / "rx.json", "--trust", trust, "--json")
    assert verified.returncode == 0, verified.stdout
    revoked = token.run(
        "keys", "revoke", token.root / "rsa.pem", "--authority", uri("authority"),
        "--crl", token.root / "ca.crl.pem", "--trust", trust,
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr
    verified = token.run("verify", token.root / "rx.json", "--trust", trust, "--json")
    assert verified.returncode == 1
    assert json.loads(verified.stdout)["reasons"][0]["code"] == "certificate_revoked"
    # An RSA key cannot be an authority's key on a token.
    refused = token.run("keys", "authority", "--name", "CA RSA", "--out", token.root / "ca-rsa",
                        "--key", uri("cps-rsa"))  # fmt: skip
    assert "EC P-256" in _one_line_without_pin(refused)
