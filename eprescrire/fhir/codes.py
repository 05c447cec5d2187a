"""Identifier systems, code systems and profiles of the French FHIR R4 guides.

Every value here is read from the guides themselves: the ANS *ePrescription* implementation guide
(``ansforge/interop-ig-fhir-ePrescription``: ``input/fsh/aliases.fsh`` and
``input/fsh/profiles``) and FR Core (``Interop-Sante/hl7.fhir.fr.core``). Where neither has a
place for something the signed prescription holds, eprescrire defines its own logical URI under
``urn:eprescrire:fhir:`` and says so (see docs/fhir.md).
"""

from __future__ import annotations

FHIR_VERSION = "4.0.1"

# --- Identifier systems -------------------------------------------------------------------
#: IDNatPS, the national identifier of a health professional: "8" + RPPS for an RPPS number.
IDNATPS = "urn:oid:1.2.250.1.71.4.2.1"
IDNATPS_RPPS_PREFIX = "8"
#: The bare RPPS number (FR Core Practitioner slice ``rpps``).
RPPS = "https://rpps.esante.gouv.fr"
#: IDNatSt, the national identifier of a health organisation: "1" + FINESS.
IDNATST = "urn:oid:1.2.250.1.71.4.2.2"
IDNATST_FINESS_PREFIX = "1"
FINESS = "http://finess.sante.gouv.fr"
#: INS-NIR, the patient's national health identifier (FR Core Patient INS slice ``INS-NIR``).
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
#: FR Core identifier types (v2-0203 extended for France).
IDENTIFIER_TYPE = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"

#: The eprescrire prescription identifier (the one printed under the QR code).
PRESCRIPTION_ID = "urn:eprescrire:prescription-id"
#: One line of a prescription: "<prescription id>/<line number>".
PRESCRIPTION_LINE = "urn:eprescrire:prescription-line"
#: A ledger record, by its chain hash (unique and tamper-evident).
LEDGER_RECORD = "urn:eprescrire:ledger-record"

# --- Code systems -------------------------------------------------------------------------
#: ANSM drug code systems ($CIP and $SpecialitePharmaceutique in the guide's aliases.fsh).
CIP = "http://data.esante.gouv.fr/ansm/medicament/Presentation"
CIS = "http://data.esante.gouv.fr/ansm/medicament/SpecialitePharmaceutique"
UCD = "http://data.esante.gouv.fr/ansm/medicament/UCD"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
BODY_WEIGHT = "29463-7"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
#: CI-SIS terminology; MED-574 "En rapport avec une ALD" (FR Core Observation ALD).
CISIS = "https://smt.esante.gouv.fr/fhir/CodeSystem/terminologie-cisis"
ALD_CODE = "MED-574"
ALD_DISPLAY = "En rapport avec une ALD"
#: HL7 v3 codes for MedicationDispense.type (ActPharmacySupplyType).
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DISPENSE_TYPES = {
    ("first", "complete"): ("FFC", "First Fill - Complete"),
    ("first", "partial"): ("FFP", "First Fill - Part Fill"),
    ("refill", "complete"): ("RFC", "Refill - Complete"),
    ("refill", "partial"): ("RFP", "Refill - Part Fill"),
}
#: HL7 v3 substance substitution (FR Core MedicationDispense.substitution.type = #G).
SUBSTITUTION = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution"
#: Reasons for "non substituable" (Code de la sécurité sociale): no national code system.
NS_REASON = "urn:eprescrire:fhir:CodeSystem:non-substitution-reason"
NS_REASON_DISPLAY = {
    "MTE": "Marge thérapeutique étroite",
    "EFG": "Enfant de moins de 6 ans, forme galénique adaptée",
    "CIF": "Contre-indication formelle",
}
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
AUTHOR_SIGNATURE = "1.2.840.10065.1.12.1.1"

# --- Extensions ---------------------------------------------------------------------------
#: R5 backport the guide adds to FRMedicationRequest: the posology as text.
RENDERED_DOSAGE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-MedicationRequest.renderedDosageInstruction"
#: No place in the guide nor in FR Core: the line is a narcotic (stupéfiant) prescription.
NARCOTIC = "urn:eprescrire:fhir:StructureDefinition:narcotic"
#: No place either: the line is a pack made for 2 or 3 months (R.5123-2), dispensed whole.
PACK_MONTHS = "urn:eprescrire:fhir:StructureDefinition:pack-months"
#: No place either: the line is a contraceptive (up to 12 weeks at once, R.5123-2).
CONTRACEPTIVE = "urn:eprescrire:fhir:StructureDefinition:contraceptive"
#: No place either: how many units (gélules, ampoules...) one box of the line holds; the line
#: is then dispensed in units (its MedicationDispense quantities count units).
UNITS_PER_BOX = "urn:eprescrire:fhir:StructureDefinition:units-per-box"
#: No place in the guide nor in FR Core: the patient opposed sharing dispensing data with the
#: prescriber (a property of the whole prescription, carried by its RequestGroup).
SHARE_OPPOSITION = "urn:eprescrire:fhir:StructureDefinition:share-opposition"

# --- Profiles -----------------------------------------------------------------------------
_EPRESCRIPTION = "https://hl7.fr/fhir/fr/medication/StructureDefinition/"
_FR_CORE = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
FR_MEDICATION_REQUEST = _EPRESCRIPTION + "fr-medicationrequest"
FR_REQUEST_GROUP = _EPRESCRIPTION + "fr-requestgroup-for-prescription"
FR_CORE_PATIENT = _FR_CORE + "fr-core-patient"
FR_CORE_PRACTITIONER = _FR_CORE + "fr-core-practitioner"
FR_CORE_PRACTITIONER_ROLE = _FR_CORE + "fr-core-practitioner-role"
FR_CORE_ORGANIZATION = _FR_CORE + "fr-core-organization"
FR_CORE_OBSERVATION_ALD = _FR_CORE + "fr-core-observation-ald"
FR_CORE_MEDICATION_DISPENSE = _FR_CORE + "fr-core-medication-dispense"
BODY_WEIGHT_PROFILE = "http://hl7.org/fhir/StructureDefinition/bodyweight"
