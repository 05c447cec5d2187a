"""FHIR R4 (4.0.1) import and export, following the ANS *ePrescription* guide and FR Core.

``export``: a signed prescription (and its ledger dispensings) -> a Bundle;
``import_``: a Bundle or MedicationRequest(s) -> the input of ``issue``. Neither needs a FHIR
library at run time; the CLI loads them only in the FHIR commands. docs/fhir.md has the mapping.
"""
