"""eprescrire: secure electronic prescriptions in the style of France's ordonnance numérique.

The public Python API is what ``__all__`` names: the use cases of the application layer
(:mod:`eprescrire.services`), each a function taking a typed request and returning typed
results, plus what is needed to call them (credentials, trust store, ledger, errors). README,
"Use from Python", shows issue → verify → dispense → status. Names load on first use, so that
``import eprescrire`` stays cheap for the command line.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it (``module:name`` where the name differs: a
#: public name never hides a submodule, such as ``eprescrire.render``).
_API = {
    # issue, render, qr
    "IssueRequest": "eprescrire.services.issuing",
    "IssueResult": "eprescrire.services.issuing",
    "issue": "eprescrire.services.issuing",
    "read_sources": "eprescrire.services.issuing",
    "RenderRequest": "eprescrire.services.printing",
    "RenderResult": "eprescrire.services.printing",
    "render_documents": "eprescrire.services.printing:render",
    "load_signed": "eprescrire.services.printing",
    "write_pdf": "eprescrire.services.printing",
    "write_qr": "eprescrire.services.printing",
    # verify
    "VerifyRequest": "eprescrire.services.verification",
    "verify": "eprescrire.services.verification",
    "annotate": "eprescrire.services.verification",
    "Verdict": "eprescrire.verdict",
    # dispense, cancel, consent, status
    "DispenseItem": "eprescrire.services.dispense",
    "DispenseRequest": "eprescrire.services.dispense",
    "DispenseResult": "eprescrire.services.dispense",
    "dispense": "eprescrire.services.dispense",
    "read_batch": "eprescrire.services.dispense",
    "request_for": "eprescrire.services.dispense",
    "CancelRequest": "eprescrire.services.prescriptions",
    "CancelResult": "eprescrire.services.prescriptions",
    "prepare_cancel": "eprescrire.services.prescriptions",
    "cancel": "eprescrire.services.prescriptions",
    "ConsentRequest": "eprescrire.services.prescriptions",
    "ConsentResult": "eprescrire.services.prescriptions",
    "consent": "eprescrire.services.prescriptions",
    "StatusRequest": "eprescrire.services.prescriptions",
    "StatusResult": "eprescrire.services.prescriptions",
    "status": "eprescrire.services.prescriptions",
    # the ledger as a whole
    "verify_chain": "eprescrire.services.ledger",
    "export": "eprescrire.services.ledger",
    "checkpoint": "eprescrire.services.ledger",
    "import_cancellations": "eprescrire.services.ledger",
    # what the use cases need
    "open_ledger": "eprescrire.ledger",
    "Ledger": "eprescrire.ledger",
    "TrustStore": "eprescrire.trust",
    "Credentials": "eprescrire.keys",
    "load_pkcs12": "eprescrire.keys",
    "read_input": "eprescrire.inputs",
    "batch_exit": "eprescrire.results",
    # errors: each carries its exit code (SPEC §3) and reason code (SPEC §4)
    "Error": "eprescrire.errors",
    "ExitCode": "eprescrire.errors",
    "Reason": "eprescrire.errors",
    "UsageError": "eprescrire.errors",
    "InputError": "eprescrire.errors",
    "ValidationError": "eprescrire.errors",
    "VerificationError": "eprescrire.errors",
    "EnvironmentProblem": "eprescrire.errors",
    "Refused": "eprescrire.dispensing",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    where = _API.get(name)
    if where is None:
        raise AttributeError(f"module 'eprescrire' has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(import_module(module), attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
