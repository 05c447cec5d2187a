"""The application layer: one function per use case, called by every front end.

Each use case takes a typed request (a frozen dataclass), returns a typed result (a frozen
dataclass with ``to_json()``, the shape README's "JSON results" documents) and raises the
project's errors (:mod:`eprescrire.errors`), each carrying its exit code. Front ends (the CLI,
a counter session, FHIR import/export) parse their input, call one of these and present what
comes back; no rule, ledger write or decision about what a user may see lives in them.

- :mod:`~eprescrire.services.issuing`: validate and sign prescriptions, write their files.
- :mod:`~eprescrire.services.printing`: the printable ordonnance and the QR image.
- :mod:`~eprescrire.services.verification`: verdicts, completed from the ledger.
- :mod:`~eprescrire.services.dispense`: verify, then record what is handed over.
- :mod:`~eprescrire.services.prescriptions`: cancel, consent, status (pharmacy and prescriber).
- :mod:`~eprescrire.services.ledger`: verify the chain, export, checkpoint, import.
"""
