"""French wording of what people read: verdicts, reasons, dispensing states, plurals.

Machines read the reason *codes* (``--json``: ``{"code": "certificate_revoked", "message": …}``),
which never change. The JSON ``message`` stays the precise technical text (English, stable for
logs and support); everything printed for people — at the counter, in ``verify``, ``dispense``,
``status``, ``consent``, ``cancel`` — comes from here, in French: a headline per reason code
(:data:`REASONS`) and, when the technical message is one we know, its French translation with
dates written the French way (:func:`reason`).

This module is pure (no I/O, no third-party import) so that any front end can use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "REASONS",
    "STATUS",
    "date",
    "plural",
    "quantity",
    "reason",
    "status",
]

#: Headline of every verdict or outcome status.
STATUS = {
    "valid": "VALIDE",
    "rejected": "REFUSÉE",
    "unreadable": "ILLISIBLE",
    "dispensed": "DÉLIVRÉE",
    "refused": "NON DÉLIVRÉE",
    "cancelled": "ANNULÉE",
    "fully_dispensed": "ENTIÈREMENT DÉLIVRÉE",
}

#: One French sentence per reason code (SPEC §4), what the pharmacist must understand first.
REASONS = {
    "no_code_found": "aucun code d'ordonnance trouvé",
    "not_a_prescription": "ce n'est pas une ordonnance numérique eprescrire",
    "malformed": "code endommagé ou incomplet : le relire ou saisir le numéro de l'ordonnance",
    "signature_invalid": "signature invalide : l'ordonnance a été modifiée ou n'est pas authentique",
    "unknown_signer": "prescripteur inconnu : son certificat n'est pas dans la liste de confiance",
    "untrusted_chain": "certificat du prescripteur non délivré par une autorité de confiance",
    "certificate_expired": "certificat du prescripteur non valable à la date de signature",
    "certificate_revoked": "certificat du prescripteur révoqué",
    "revocation_unknown": "révocation invérifiable : liste de révocation absente ou périmée",
    "prescriber_mismatch": "le RPPS du prescripteur n'est pas celui du certificat de signature",
    "not_yet_valid": "ordonnance datée dans le futur",
    "expired": "ordonnance périmée",
    "cancelled": "ordonnance annulée par le prescripteur",
    "fully_dispensed": "ordonnance déjà entièrement délivrée",
    "quantity_exceeded": "quantité supérieure à ce qui peut être délivré",
    "renewal_not_due": "renouvellement pas encore dû",
    "narcotic_window": "stupéfiant : délai de délivrance dépassé",
    "substitution_forbidden": "substitution interdite",
    "conflicting_record": "en conflit avec une délivrance déjà enregistrée",
    "unreadable_input": "entrée illisible",
}

_ISO_DATE = r"(\d{4}-\d{2}-\d{2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?"


def status(key: str) -> str:
    """The French headline of a status (``valid`` → ``VALIDE``); unknown keys upper-cased."""
    return STATUS.get(key, key.upper())


def date(iso: str) -> str:
    """``2026-11-25`` (or an ISO date-time) → ``25/11/2026``; anything else unchanged."""
    match = re.fullmatch(_ISO_DATE, iso.strip())
    if not match:
        return iso
    year, month, day = match.group(1).split("-")
    return f"{day}/{month}/{year}"


def _dates(text: str) -> str:
    return re.sub(_ISO_DATE, lambda m: date(m.group(0)), text)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 boîte``, ``2 boîtes``, ``0 boîte`` (French: 0 and 1 take the singular).

    ``plural_form`` defaults to the singular plus ``s`` (``x`` after ``-eau``/``-au``/``-eu``);
    words ending in ``s``, ``x`` or ``z`` do not change.
    """
    if abs(count) < 2:
        return f"{count} {singular}"
    if plural_form is None:
        plural_form = _plural_word(singular)
    return f"{count} {plural_form}"


def _plural_word(word: str) -> str:
    if word.endswith(("s", "x", "z")):
        return word
    if word.endswith(("eau", "au", "eu")):
        return word + "x"
    if word.endswith("al") and word not in ("bal", "festival", "récital", "chacal"):
        return word[:-2] + "aux"
    return word + "s"


def quantity(count: int, unit: str | None) -> str:
    """A quantity with its unit as printed on the prescription: ``1 boîte de 30``,
    ``2 boîtes de 30``, ``3 comprimés``; without a unit, ``2 unités``.

    Only the head word agrees (``boîte de 30`` → ``boîtes de 30``, ``flacon de 125 ml`` →
    ``flacons de 125 ml``).
    """
    if not unit:
        return plural(count, "unité")
    head, sep, rest = unit.partition(" ")
    if abs(count) < 2:
        return f"{count} {unit}"
    return f"{count} {_plural_word(head)}{sep}{rest}"


# Known technical messages -> French. Each pattern matches the whole message (after an
# optional "name: " prefix); a message none matches is shown after the headline unchanged.
class _Pattern:
    """A pattern compiled when first tried (compiling them all costs ``verify`` start-up
    time, and most runs translate no message or one)."""

    __slots__ = ("_compiled", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled: re.Pattern[str] | None = None

    def fullmatch(self, text: str) -> re.Match[str] | None:
        if self._compiled is None:
            self._compiled = re.compile(self._source, re.DOTALL)
        return self._compiled.fullmatch(text)


_Rule = tuple[_Pattern, Callable[[re.Match[str]], str]]


def _rule(pattern: str, render: Callable[[re.Match[str]], str]) -> _Rule:
    return _Pattern(pattern), render


def _g(m: re.Match[str], name: str) -> str:
    return _dates(m.group(name))


_RULES: list[_Rule] = [
    _rule(
        r"ledger unavailable, dispensing state unknown: (?P<why>.*)",
        lambda m: (
            f"registre des délivrances indisponible, état des délivrances inconnu : {m['why']}"
        ),
    ),
    _rule(
        r"nothing may be dispensed now: (?P<rest>.*)",
        lambda m: "rien à délivrer maintenant : " + reason_detail(m.group("rest")),
    ),
    _rule(
        r"cancelled by the prescriber on (?P<at>\S+): (?P<why>.*)",
        lambda m: f"annulée par le prescripteur le {_g(m, 'at')} : {m.group('why')}",
    ),
    _rule(r"issued after the dispensing time", lambda m: "émise après l'heure de délivrance"),
    _rule(
        r"every line has been dispensed in full", lambda m: "toutes les lignes ont été délivrées"
    ),
    _rule(
        r"the treatment period ended on (?P<d>\S+) \(12 months\)",
        lambda m: f"la période de traitement a pris fin le {_g(m, 'd')} (12 mois)",
    ),
    _rule(
        r"first dispensing was due by (?P<d>\S+) \(3 months after issue\)",
        lambda m: (
            f"la première délivrance devait avoir lieu avant le {_g(m, 'd')} "
            "(3 mois après la prescription)"
        ),
    ),
    _rule(
        r"line (?P<n>\d+) is fully dispensed \((?P<a>\d+) of (?P<b>\d+)\)",
        lambda m: f"ligne {m['n']} entièrement délivrée ({m['a']} sur {m['b']})",
    ),
    _rule(
        r"line (?P<n>\d+) was never dispensed and its first dispensing was due by (?P<d>\S+)",
        lambda m: (
            f"ligne {m['n']} jamais délivrée : la première délivrance devait avoir lieu "
            f"avant le {_g(m, 'd')}"
        ),
    ),
    _rule(
        r"line (?P<n>\d+): renewal (?P<r>\d+) of (?P<of>\d+) is due from (?P<d>\S+) "
        r"\(the previous dispensing lasts until (?P<u>\S+)\)",
        lambda m: (
            f"ligne {m['n']} : le renouvellement {m['r']} sur {m['of']} est dû à partir du "
            f"{_g(m, 'd')} (la délivrance précédente couvre jusqu'au {_g(m, 'u')})"
        ),
    ),
    _rule(
        r"line (?P<n>\d+): the next fraction is due from (?P<d>\S+) "
        r"\(at most (?P<w>\d+) days of treatment at once\)",
        lambda m: (
            f"ligne {m['n']} : la fraction suivante est due à partir du {_g(m, 'd')} "
            f"(au plus {plural(int(m['w']), 'jour')} de traitement à la fois)"
        ),
    ),
    _rule(
        r"line (?P<n>\d+) is a narcotic whose treatment period ended on (?P<d>\S+)",
        lambda m: (
            f"ligne {m['n']} : stupéfiant dont la période de traitement a pris fin le {_g(m, 'd')}"
        ),
    ),
    _rule(
        r"line (?P<n>\d+): the last narcotic fraction was dispensed; (?P<u>\d+) unit\(s\) of "
        r"missed fractions are not dispensed later",
        lambda m: (
            f"ligne {m['n']} : la dernière fraction du stupéfiant a été délivrée ; "
            f"{plural(int(m['u']), 'unité')} des fractions manquées ne sont pas délivrées plus tard"
        ),
    ),
    _rule(
        r"line (?P<n>\d+): this narcotic fraction was dispensed; the next is due from (?P<d>\S+)",
        lambda m: (
            f"ligne {m['n']} : cette fraction du stupéfiant a été délivrée ; la suivante est "
            f"due à partir du {_g(m, 'd')}"
        ),
    ),
    _rule(
        r"line (?P<n>\d+) is a narcotic presented after (?P<d>\S+): only the remaining "
        r"(?P<k>\d+) day\(s\) of this period may be dispensed, less than one unit",
        lambda m: (
            f"ligne {m['n']} : stupéfiant présenté après le {_g(m, 'd')} ; seuls les "
            f"{plural(int(m['k']), 'jour')} restants peuvent être délivrés, moins d'une unité"
        ),
    ),
    _rule(
        r"line (?P<n>\d+) is non substituable \((?P<r>\w+)\): no generic substitution",
        lambda m: (
            f"ligne {m['n']} non substituable ({m['r']}) : pas de substitution par un générique"
        ),
    ),
    _rule(
        r"line (?P<n>\d+): (?P<q>\d+) asked, at most (?P<a>\d+) may be dispensed now "
        r"\((?P<why>.*)\)",
        lambda m: (
            f"ligne {m['n']} : demandé {m['q']}, délivrable maintenant au plus {m['a']} "
            f"({reason_detail(m['why'])})"
        ),
    ),
    _rule(
        r"only (?P<k>\d+) remain on the prescription",
        lambda m: f"il n'en reste que {m['k']} sur l'ordonnance",
    ),
    _rule(
        r"a narcotic presented late is dispensed only for the remaining duration",
        lambda m: "un stupéfiant présenté en retard n'est délivré que pour la durée restante",
    ),
    _rule(
        r"the rest of this dispensing, or the days that may be handed over at once",
        lambda m: "le reste de cette délivrance, ou les jours délivrables en une fois",
    ),
    _rule(
        r"the dispensing time (?P<a>\S+) precedes a dispensing already recorded at (?P<b>\S+)",
        lambda m: (
            f"l'heure de délivrance ({_g(m, 'a')}) précède une délivrance déjà enregistrée "
            f"({_g(m, 'b')})"
        ),
    ),
    _rule(
        r"(?P<k>\d+) prescription codes found; dispense one at a time",
        lambda m: f"{m['k']} codes d'ordonnance trouvés : délivrer une ordonnance à la fois",
    ),
    _rule(r"(?P<f>.+): no such file", lambda m: f"{m['f']} : fichier introuvable"),
    _rule(r"(?P<f>.+): is a directory", lambda m: f"{m['f']} : c'est un dossier"),
    _rule(r"(?P<f>.+): empty input", lambda m: f"{m['f']} : entrée vide"),
    _rule(r"(?P<f>.+): no QR code found", lambda m: f"{m['f']} : aucun code QR trouvé"),
    _rule(
        r"(?P<f>.+): too large for a prescription",
        lambda m: f"{m['f']} : trop volumineux pour une ordonnance",
    ),
    _rule(
        r"(?P<f>.+): a prescription input for `eprescrire issue`, not a signed prescription",
        lambda m: (
            f"{m['f']} : fichier de saisie pour « eprescrire issue », pas une ordonnance signée"
        ),
    ),
    _rule(
        r"already cancelled; nothing new recorded",
        lambda m: "déjà annulée ; rien de nouveau n'est enregistré",
    ),
    _rule(
        r"the ledger has not seen this prescription yet; the cancellation applies when it does",
        lambda m: (
            "le registre ne connaît pas encore cette ordonnance ; l'annulation s'appliquera "
            "dès qu'elle y sera présentée"
        ),
    ),
    _rule(
        r"the cancelling key is not the key that signed the prescription",
        lambda m: "la clé d'annulation n'est pas celle qui a signé l'ordonnance",
    ),
    _rule(
        r"this key did not sign the prescription",
        lambda m: "cette clé n'a pas signé l'ordonnance",
    ),
    _rule(
        r"(?P<k>\d+) other QR code\(s\) on the page are not prescriptions; ignored",
        lambda m: (
            f"{plural(int(m['k']), 'autre code QR')} de la page, hors ordonnance, "
            + ("ignorés" if int(m["k"]) > 1 else "ignoré")
        ),
    ),
    _rule(
        r"identifier (?P<id>\S+) typed: without a ledger only the code can be verified "
        r"\(scan it, or start counter with --ledger\)",
        lambda m: (
            f"numéro {m['id']} saisi : sans registre, seul le code peut être vérifié "
            "(le scanner, ou relancer counter avec --ledger)"
        ),
    ),
    _rule(
        r"the ledger has no record of prescription (?P<id>\S+); scan the code",
        lambda m: f"le registre ne connaît pas l'ordonnance {m['id']} : scanner le code",
    ),
    _rule(
        r"--line (?P<n>\d+): the prescription has (?P<k>\d+) line\(s\)",
        lambda m: f"ligne {m['n']} : l'ordonnance a {plural(int(m['k']), 'ligne')}",
    ),
    _rule(r"(?P<f>.+): line too long", lambda m: f"{m['f']} : ligne trop longue"),
    _rule(
        r"the ledger has no record of prescription (?P<id>\S+)",
        lambda m: f"le registre ne connaît pas l'ordonnance {m['id']}",
    ),
    _rule(
        r"no known certificate for key id (?P<k>\S+)",
        lambda m: f"aucun certificat connu pour la clé {m['k']}",
    ),
    _rule(
        r"signature does not match the content",
        lambda m: "la signature ne correspond pas au contenu",
    ),
    _rule(
        r"certificate (?P<s>[0-9a-f]+) was revoked by (?P<a>.+)",
        lambda m: f"certificat {m['s']} révoqué par {m['a']}",
    ),
    _rule(
        r"no CRL from authority (?P<a>.+): revocation cannot be checked",
        lambda m: f"pas de liste de révocation de l'autorité {m['a']} : révocation invérifiable",
    ),
    _rule(
        r"the prescriber RPPS differs from the RPPS of the signing certificate",
        lambda m: "le RPPS du prescripteur diffère de celui du certificat de signature",
    ),
    _rule(
        r"not an eprescrire document or code",
        lambda m: "ni un document ni un code eprescrire",
    ),
    _rule(
        r"issued (?P<d>\S+), after the verification time",
        lambda m: f"émise le {_g(m, 'd')}, après l'heure de vérification",
    ),
]


_RULES += [
    _rule(
        r"the prescriber name in the prescription \((?P<p>.+)\) is not the name in the signing "
        r"certificate \((?P<c>.+)\): the certificate's identity is shown",
        lambda m: (
            f"le nom du prescripteur écrit sur l'ordonnance ({m['p']}) n'est pas celui du "
            f"certificat de signature ({m['c']}) : seule l'identité du certificat est affichée"
        ),
    ),
    _rule(
        r"the signer's certificate expired on (?P<e>\S+), after the stated signing time "
        r"(?P<s>\S+): that time is stated by the signer and cannot be checked offline",
        lambda m: (
            f"le certificat du signataire a expiré le {_g(m, 'e')}, après la date de signature "
            f"({_g(m, 's')}) ; cette date est déclarée par le signataire et ne peut pas être "
            "vérifiée hors ligne"
        ),
    ),
]

_RULES.append(
    _rule(
        r"another prescription signed by a different key \((?P<k>.+)\) is recorded under this "
        r"identifier: the two are kept apart; tell both prescribers",
        lambda m: (
            f"une autre ordonnance, signée par une autre clé ({m['k']}), est enregistrée sous ce "
            "numéro : les deux sont tenues séparément ; prévenir les deux prescripteurs"
        ),
    )
)


def signer(who: Any, prescriber: Any) -> str:
    """Who signed, from the certificate (name, RPPS); the specialty the prescription states
    only when its prescriber name is the certificate's."""
    from eprescrire.identity import same_name

    if who is None:  # not reached for an authentic verdict
        return f"{prescriber.name} — RPPS {prescriber.rpps}"
    text = f"{who.name} — RPPS {who.rpps or '?'}"
    if same_name(who.name, prescriber.name) and prescriber.specialty:
        text = f"{who.name} — {prescriber.specialty} — RPPS {who.rpps or '?'}"
    return text + " (certificat de signature)"


def reason_detail(message: str) -> str:
    """The French translation of a known technical message; the message itself otherwise."""
    for pattern, render in _RULES:
        match = pattern.fullmatch(message)
        if match:
            return render(match)
    return message


def reason(code: str, message: str) -> str:
    """One French line for a reason: the headline of its code, then what the message adds.

    Messages of codes whose headline says everything (a broken signature, a damaged code) are
    technical details left to ``--json`` and ``--verbose``.
    """
    headline = REASONS.get(code, code)
    detail = reason_detail(message)
    if detail == message and code in _HEADLINE_ONLY:
        return headline
    return f"{headline} — {detail}" if detail else headline


# For these codes, an untranslated message is a technical detail (which byte, which field):
# the headline alone tells the pharmacist what to do.
_HEADLINE_ONLY = frozenset(
    {"malformed", "signature_invalid", "not_a_prescription", "untrusted_chain", "no_code_found"}
)


# --------------------------------------------------------------------------------------------
# Summaries and dispensing states (from the JSON shapes of SPEC §4 and ``status --json``)


def summary(counts: dict[str, int], what: str = "vérifiée") -> str:
    """``3 ordonnances vérifiées : 1 valide, 1 refusée, 1 illisible``."""
    total = sum(counts.values())
    head = plural(total, "ordonnance")
    verb = what if total < 2 else what + "s"
    parts = [
        plural(counts.get("valid", 0), "valide"),
        plural(counts.get("rejected", 0), "refusée"),
        plural(counts.get("unreadable", 0), "illisible"),
    ]
    return f"{head} {verb} : " + ", ".join(parts)


def dispensing_summary(state: dict[str, Any]) -> str:
    """One line per prescription: ``ligne 1 : délivré 1 sur 2 ; ligne 2 : …``."""
    lines = state.get("lines") or []
    parts = [
        f"ligne {item['line']} : délivré {item['dispensed']} sur {item['prescribed']}"
        for item in lines
        if "dispensed" in item
    ]
    if state.get("cancelled"):
        parts.insert(0, "ANNULÉE")
    elif state.get("fully_dispensed"):
        parts.insert(0, "entièrement délivrée")
    elif not parts or all(item.get("dispensed") == 0 for item in lines):
        return "jamais délivrée"
    return " ; ".join(parts)


def line_state(item: dict[str, Any]) -> str:
    """The dispensing state of one line, in French."""
    used, renewals = int(item["renewals_used"]), int(item["renewals"])
    text = (
        f"ligne {item['line']} : délivré {item['dispensed']} sur {item['prescribed']}, "
        f"reste {item['remaining']}, renouvellements {used}/{renewals}"
    )
    if item.get("available_now"):
        text += f", délivrable maintenant : {item['available_now']}"
    if item.get("next_due"):
        text += f", prochaine délivrance le {date(str(item['next_due']))}"
    return text


def event(item: dict[str, Any]) -> str:
    """One dispensing event of ``status``, in French."""
    kind = (
        "délivrance" if item["dispensing"] == 1 else f"renouvellement {int(item['dispensing']) - 1}"
    )
    when = f"le {date(str(item['at']))}"
    if item.get("handed_over"):
        # An earlier hand-over recorded later: both times, as recorded.
        when = f"remis le {date(str(item['handed_over']))}, enregistré le {date(str(item['at']))}"
    text = (
        f"n° {item['seq']} {when} : ligne {item['line']}, {kind}, "
        f"quantité {item['quantity']}, pharmacien RPPS {item['pharmacist']}"
    )
    if item.get("pharmacy"):
        text += f", pharmacie FINESS {item['pharmacy']}"
    if item.get("substituted"):
        text += f", substitué par {item['generic']}"
    return text


OPPOSITION = "Le patient s'oppose au partage des données de délivrance avec le prescripteur."


def born(sex: str | None) -> str:
    """``née`` (F), ``né`` (M), ``né(e)`` when the sex is not given."""
    return {"F": "née", "M": "né"}.get(sex or "", "né(e)")


def opposition(sex: str | None) -> str:
    """The patient's opposition to sharing dispensing data, agreeing with the patient's sex."""
    who = {"F": "La patiente", "M": "Le patient"}.get(sex or "", "Le patient")
    return f"{who} s'oppose au partage des données de délivrance avec le prescripteur."


WITHHELD = "Détails de délivrance non communiqués : le patient s'oppose à leur partage avec le prescripteur."


def consent(oppose: bool) -> str:
    """What ``consent`` confirms."""
    if oppose:
        return "Enregistré : le patient s'oppose au partage des données de délivrance avec le prescripteur."
    return "Enregistré : le patient ne s'oppose plus au partage des données de délivrance avec le prescripteur."


def consent_change(item: dict[str, Any]) -> str:
    """One consent record of ``status``: when, the patient's choice, who recorded it."""
    choice = (
        "le patient s'oppose au partage avec le prescripteur"
        if item["share_opposition"]
        else "le patient ne s'oppose plus au partage avec le prescripteur"
    )
    by = item.get("by") or {}
    if by.get("actor") == "prescriber":
        who = f"le prescripteur (RPPS {by.get('rpps') or '?'})"
    elif by.get("actor") == "pharmacy":
        parts = [by.get("name") or "pharmacie"]
        if by.get("pharmacy"):
            parts.append(f"FINESS {by['pharmacy']}")
        if by.get("pharmacist"):
            parts.append(f"pharmacien RPPS {by['pharmacist']}")
        who = ", ".join(parts)
    else:
        who = "un auteur inconnu"
    text = f"consentement n° {item['seq']} le {date(str(item['at']))} : {choice} — enregistré par {who}"
    if not item.get("signed"):
        text += " (NON SIGNÉ : auteur non prouvé)"
    return text


COUNTER_PROMPT = "Scannez les codes (ou saisissez un numéro d'ordonnance) ; Ctrl-D pour terminer."


def ignored(why: str) -> str:
    """A session line that was not acted on."""
    return f"ligne ignorée : {why}"


def dispensings(done: int, refused: int) -> str:
    """``2 délivrances, 1 refusée`` (the end of a counter session that dispensed)."""
    return f"{plural(done, 'délivrance')}, {plural(refused, 'refusée')}"
