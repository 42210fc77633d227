"""The description of the tenant's processing, built in one place from its live settings, its name and what the
deployment enforces: an export's processing_record.json (what GDPR art. 15(1) says a person is owed besides the data)
and the controller's record of processing activities (art. 30(1), GET /v1/records-of-processing, `describe`) both
take their purposes, legal bases, categories, recipients, transfers and retention from the same functions here, read
from the settings at the time, so the two cannot disagree and neither is ever stale.

The record's live counts cost Select=COUNT Queries of indexes, never a Scan: 4 (MemberIndex) + 1
(OpenRequestsIndex) + 32 (the day index, the last INTERACTION_WINDOW_DAYS days) besides the two reads of the tenant
and its settings: 39 AWS calls in all."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chatsphere.logic import pages
from chatsphere.logic.ports import RequestStore, SettingsStore, SubjectStore, TenantDirectory
from chatsphere.models.processing import (
    Activity,
    Counts,
    Flag,
    RecordOfProcessing,
    RetentionPeriod,
    Transfer,
)
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import PURPOSES

# The European Economic Area: the 27 EU member states (europa.eu, "EU countries", since 1 February 2020) and
# Iceland, Liechtenstein and Norway (the EEA Agreement). A transfer to any other country needs a safeguard
# (GDPR chapter V: an adequacy decision, standard contractual clauses, binding corporate rules...).
EU_27 = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
EEA = frozenset([*EU_27.split(" "), "IS", "LI", "NO"])
LEGAL_BASES = {
    "consent": "consent (GDPR art. 6(1)(a))",
    "contract": "performance of a contract (GDPR art. 6(1)(b))",
    "legal_obligation": "compliance with a legal obligation (GDPR art. 6(1)(c))",
    "legitimate_interest": "legitimate interests (GDPR art. 6(1)(f))",
}
INTERACTION_WINDOW_DAYS = 7  # the record's interaction count: 7 days x DAY_SHARDS Queries, and the late bucket's

# interactions.csv's columns, and what the data dictionary of every package says of them
CSV_COLUMNS = {
    "interaction_id": "Identifier of the interaction",
    "conversation_id": "The tenant's identifier of the conversation",
    "role": "Who wrote it: customer (the subject), agent (a person at the tenant) or bot",
    "channel": "Channel it came through (e.g. web, email)",
    "occurred_at": "When it happened (ISO 8601, UTC)",
    "policy_version": "Privacy policy version in force at that time",
    "text": "The full text of the message. A value that starts with =, +, -, @, a tab or a carriage return "
    "is written with a leading apostrophe (') so that a spreadsheet shows it instead of running it as a formula; "
    "interactions.jsonl has the text exactly as written",
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP: cells a spreadsheet may evaluate


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet evaluates (OWASP CSV injection): prefix formula starts with '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# Each category and what it holds. `usage` is a category a processor may receive (the settings let a tenant name it);
# this service stores none, and the settings set no period for it: a processor that receives it is flagged.
DATA_CATEGORIES = {
    "identity": ["name"],
    "contact": ["email", "phone", "contact"],
    "interactions": list(CSV_COLUMNS),
}
USAGE_FIELDS = ["as the processors that receive it hold it: this service stores no usage data"]
# Every purpose uses all three categories but analytics, which counts interactions by day, channel and role only.
PURPOSE_CATEGORIES = {purpose: list(DATA_CATEGORIES) for purpose in PURPOSES} | {"analytics": ["interactions"]}
SUBJECT_CATEGORIES = [
    "The controller's customers and prospective customers who contact it (chat, email and other channels)",
    "The controller's agents, as authors of the replies in those conversations",
]
# What the deployment enforces for every tenant (template.yaml, logic/crypto.py, dal/), not a tenant's choice.
SECURITY_MEASURES = [
    "Each person's data encrypted (AES-256-GCM) under a key of their own, wrapped by KMS; an erasure destroys that "
    "key first, so every copy, backups included, is unreadable from then on",
    "Tables, bucket, queues and logs encrypted at rest under a KMS key; each function uses it only through those "
    "services, or to unwrap the data keys and tenant secrets its own code needs",
    "TLS only: the API is HTTPS, and the bucket refuses any request not made over TLS",
    "Tenant isolation: the tenant comes only from its API key (hashed at rest); every stored key begins with it",
    "A signed evidence ledger: every request, erasure, retention run and settings change is an entry of an "
    "append-only Merkle tree (RFC 9162) with KMS-signed heads, in an S3 Object Lock (compliance) bucket",
    "No personal value in logs, metrics, keys, URLs or error messages",
]
RIGHTS = [
    ("access", "Ask for an export of your data (this package is one)"),
    ("rectification", "Ask for your details to be corrected"),
    ("objection", "Object to the use of your data for analytics, personalisation or improvement"),
    ("portability", "Ask for this package to be delivered to another controller"),
    ("deactivation", "Ask for your account to be deactivated: your data is kept, and not used for new conversations"),
    ("erasure", "Ask for your data to be deleted, subject to legal exceptions"),
    ("complaint", "Lodge a complaint with your data protection supervisory authority"),
]


@dataclass(frozen=True)
class ProcessingPorts:
    settings: SettingsStore  # read with its version
    tenants: TenantDirectory  # the tenant's name, while no controller is set
    subjects: SubjectStore  # count_subjects, count_interactions
    requests: RequestStore  # count_open


# ----------------------------------------------------------------- the one description
def retention(settings: TenantSettings) -> dict[str, RetentionPeriod]:
    """Each category's period from the settings; a category a processor receives that none covers has no period."""
    r = settings.retention
    inactive = f"{r.inactive_profiles.days} days after the last interaction, then erased"
    kept_as = "deleted" if r.interactions.action == "delete" else "anonymised into daily counts"
    periods = {
        "identity": RetentionPeriod(days=r.inactive_profiles.days, action="erased", text=inactive),
        "contact": RetentionPeriod(days=r.inactive_profiles.days, action="erased", text=inactive),
        "interactions": RetentionPeriod(
            days=r.interactions.days,
            action=kept_as,
            text=f"{r.interactions.days} days after they occurred, then {kept_as}",
        ),
        "export_packages": RetentionPeriod(
            days=r.export_packages.days, action="deleted", text=f"{r.export_packages.days} days after they were created"
        ),
        "request_records": RetentionPeriod(
            days=r.closed_requests.days,
            action="deleted",
            text=f"{r.closed_requests.days} days after the request closed",
        ),
    }
    for category in _processor_categories(settings):
        periods.setdefault(category, RetentionPeriod(days=None, action=None, text="No retention period is set"))
    return periods


def _processor_categories(settings: TenantSettings) -> list[str]:
    return sorted({c for p in settings.processors for c in p.data_categories})


def data_categories(settings: TenantSettings) -> dict[str, list[str]]:
    extra = {c: USAGE_FIELDS for c in _processor_categories(settings) if c not in DATA_CATEGORIES}
    return {**DATA_CATEGORIES, **extra}


def transfers(settings: TenantSettings) -> list[Transfer]:
    return [
        Transfer(processor=p.name, country=p.country, safeguard=p.safeguard)
        for p in settings.processors
        if p.country not in EEA
    ]


def flags(settings: TenantSettings) -> list[Flag]:
    """What the record shows is missing: a category a processor receives with no period, a transfer unguarded."""
    found = [
        Flag(
            kind="category_without_retention",
            subject=category,
            detail=f"processors receive {category} data, and the settings set no retention period for it",
        )
        for category, period in retention(settings).items()
        if period.days is None
    ]
    found += [
        Flag(
            kind="transfer_without_safeguard",
            subject=t.processor,
            detail=f"a transfer to {t.country}, outside the EEA, with no safeguard stated (GDPR art. 44-46)",
        )
        for t in transfers(settings)
        if t.safeguard is None
    ]
    return found


def _transfer_text(t: Transfer) -> str:
    return f"{t.processor} ({t.country}): {t.safeguard or 'no safeguard stated'}"


def activities(settings: TenantSettings) -> list[Activity]:
    periods = retention(settings)
    out = []
    for purpose, description in PURPOSES.items():
        categories = PURPOSE_CATEGORIES[purpose]
        receiving = [p for p in settings.processors if set(p.data_categories) & set(categories)]
        names = {p.name for p in receiving}
        out.append(
            Activity(
                purpose=purpose,
                description=description,
                legal_basis=getattr(settings.purposes, purpose),
                categories_of_subjects=SUBJECT_CATEGORIES,
                categories_of_data=categories,
                recipients=[p.name for p in receiving],
                transfers=[_transfer_text(t) for t in transfers(settings) if t.processor in names],
                retention=[f"{c}: {periods[c].text}" for c in categories],
                security_measures=SECURITY_MEASURES,
            )
        )
    return out


def controller_name(settings: TenantSettings, tenant_name: str) -> str:
    return settings.controller.name if settings.controller else tenant_name


def processing_record(settings: TenantSettings, tenant_name: str, objections: dict[str, str]) -> dict[str, Any]:
    """An export's processing_record.json: what GDPR art. 15(1) says the subject is owed besides the data itself."""
    controller = settings.controller
    return {
        "controller": controller_name(settings, tenant_name),
        "controller_contact": controller.contact if controller else None,
        "dpo_contact": controller.dpo_contact if controller else None,
        "purposes": [
            {
                "purpose": key,
                "description": text,
                "legal_basis": getattr(settings.purposes, key),
                "objected": key in objections,
                "applies": key not in objections,
            }
            for key, text in PURPOSES.items()
        ],
        "data_categories": data_categories(settings),
        "recipients": [p.model_dump() for p in settings.processors],
        "transfers": [t.model_dump() for t in transfers(settings)],
        "retention": {category: period.text for category, period in retention(settings).items()},
        "source": "The data subject, and the controller's agents and bots in conversations with the subject",
        "automated_decision_making": "None",
        "rights": [{"right": right, "how": how} for right, how in RIGHTS],
    }


# ----------------------------------------------------------------- the record of processing (art. 30)
def record_of_processing(ports: ProcessingPorts, tenant_id: str, now: datetime) -> RecordOfProcessing:
    settings, version = ports.settings.read_settings(tenant_id)
    tenant = ports.tenants.get_tenant(tenant_id)
    today = now.date()
    first = today - timedelta(days=INTERACTION_WINDOW_DAYS - 1)
    counts = Counts(
        subjects=ports.subjects.count_subjects(tenant_id),
        open_requests=ports.requests.count_open(tenant_id),
        interactions_last_7_days=ports.subjects.count_interactions(tenant_id, first.isoformat(), today.isoformat()),
    )
    return describe(settings, version, tenant.name if tenant else tenant_id, counts, now)


def describe(
    settings: TenantSettings, version: int, tenant_name: str, counts: Counts, now: datetime
) -> RecordOfProcessing:
    return RecordOfProcessing(
        controller=settings.controller,
        controller_name=controller_name(settings, tenant_name),
        generated_at=now,
        settings_version=version,
        activities=activities(settings),
        categories_of_subjects=SUBJECT_CATEGORIES,
        data_categories=data_categories(settings),
        recipients=settings.processors,
        transfers=transfers(settings),
        retention=retention(settings),
        security_measures=SECURITY_MEASURES,
        counts=counts,
        flags=flags(settings),
    )


# The columns of the CSV, in the order regulators publish art. 30 templates in (the CNIL's "registre des activités
# de traitement": purpose, legal basis, categories of persons, categories of data, recipients, transfers outside the
# EU and their safeguards, retention periods, security measures). One row per purpose; a list is joined by "; ".
RECORD_COLUMNS = [
    "purpose",
    "legal_basis",
    "categories_of_subjects",
    "categories_of_data",
    "recipients",
    "transfers_outside_eea_and_safeguards",
    "retention",
    "security_measures",
]


def to_csv(record: RecordOfProcessing) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(RECORD_COLUMNS)
    for a in record.activities:
        cells = [
            f"{a.purpose}: {a.description}",
            LEGAL_BASES[a.legal_basis],
            "; ".join(a.categories_of_subjects),
            "; ".join(a.categories_of_data),
            "; ".join(a.recipients) or "none",
            "; ".join(a.transfers) or "none",
            "; ".join(a.retention),
            "; ".join(a.security_measures),
        ]
        writer.writerow([csv_cell(c) for c in cells])  # processor names are tenant text
    return text.getvalue()


def to_html(record: RecordOfProcessing) -> str:
    c = record.controller
    who = [f"Controller: {record.controller_name}"]
    if c is not None:
        who += [f"Contact: {c.contact}", f"Data protection officer: {c.dpo_contact or 'none designated'}"]
    else:
        who.append("Contact: not set (settings `controller`)")
    rows = [
        [
            f"{a.description} ({a.purpose})",
            LEGAL_BASES[a.legal_basis],
            ", ".join(a.categories_of_data),
            ", ".join(a.recipients) or "none",
            "; ".join(a.transfers) or "none",
            "; ".join(a.retention),
        ]
        for a in record.activities
    ]
    flagged = [f"{f.kind}: {f.subject}: {f.detail}" for f in record.flags]
    n = record.counts
    return (
        pages.head(f"Record of processing activities: {record.controller_name}")
        + pages.paragraph(f"Built {record.generated_at.isoformat()} from settings version {record.settings_version}.")
        + pages.section("Controller", pages.items(who))
        + pages.section(
            "Flags",
            f'<ul class="flag">\n{"".join(f"<li>{pages.esc(f)}</li>" for f in flagged)}</ul>\n'
            if flagged
            else pages.paragraph("Nothing is missing."),
        )
        + pages.section(
            "Processing activities",
            pages.table(
                ["Purpose", "Legal basis", "Data", "Recipients", "Transfers outside the EEA", "Retention"], rows
            ),
        )
        + pages.section("Categories of data subjects", pages.items(record.categories_of_subjects))
        + pages.section(
            "Recipients (processors)",
            pages.table(
                ["Name", "Purpose", "Data", "Country", "Safeguard"],
                [
                    [p.name, p.purpose, ", ".join(p.data_categories), p.country, p.safeguard or ""]
                    for p in record.recipients
                ],
            ),
        )
        + pages.section(
            "Retention", pages.table(["Category", "Period"], [[k, v.text] for k, v in record.retention.items()])
        )
        + pages.section("Security measures", pages.items(record.security_measures))
        + pages.section(
            "Counts",
            pages.items(
                [
                    f"Subjects: {n.subjects}",
                    f"Open requests: {n.open_requests}",
                    f"Interactions in the last {INTERACTION_WINDOW_DAYS} days: {n.interactions_last_7_days}",
                ]
            ),
        )
        + pages.TAIL
    )
