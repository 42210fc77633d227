"""index.html, the page of an export package a person can read: their data in plain language, why it is used and on
what legal basis, who receives it, how long it is kept, their rights and whom to contact (the controller and its
DPO, from the settings). It opens offline: inline CSS only, nothing loaded, every text escaped (logic/pages.py).

It is written as a stream, like the rest of the package: `start` (everything before the conversations), one
`interaction_row` per interaction as the export reads them, then `end`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatsphere.logic import pages
from chatsphere.models.subjects import Interaction

PLAIN_BASES = {
    "consent": "your consent, which you may withdraw at any time",
    "contract": "it is needed to provide the service you asked for (a contract)",
    "legal_obligation": "the law requires it (a legal obligation)",
    "legitimate_interest": "the controller's legitimate interests, to which you may object",
}
PLAIN_PURPOSES = {
    "inquiries": "Answering your questions and requests",
    "improvement": "Improving the service",
    "personalization": "Personalising the service for you",
    "analytics": "Counting trends, in anonymous statistics",
    "legal_obligation": "Meeting the controller's legal obligations",
}
PLAIN_CATEGORIES = {
    "identity": "your name",
    "contact": "your contact details",
    "interactions": "your messages",
    "usage": "how you use the service",
    "export_packages": "copies of your data like this package",
    "request_records": "the record of each request you make (such as this one)",
}
PROFILE_FIELDS = {
    "subject_id": "Your identifier at the controller (a pseudonym, not your name)",
    "name": "Name",
    "email": "Email address",
    "phone": "Phone number",
    "status": "Status of your account",
    "created_at": "Since when the controller holds your profile",
    "updated_at": "Last change to your profile",
}
FILES = {
    "index.html": "this page",
    "subject.json": "your profile, as data",
    "interactions.jsonl": "every message, one JSON object a line, the text exactly as written",
    "interactions.csv": "every message, as a table a spreadsheet opens",
    "processing_record.json": "why and how your data is processed, as data",
    "data_dictionary.json": "what each field of the data files means",
    "data_dictionary.csv": "what each column of interactions.csv means",
    "manifest.json": "a SHA-256 checksum of every file, to check that none was changed",
}


def _plain(categories: list[str]) -> str:
    return ", ".join(PLAIN_CATEGORIES.get(c, c.replace("_", " ")) for c in categories)


def _who(record: dict[str, Any]) -> list[str]:
    contact, dpo = record.get("controller_contact"), record.get("dpo_contact")
    lines = [f"Controller (responsible for your data): {record['controller']}"]
    lines.append(f"Contact: {contact}" if contact else "Contact: the controller has not given one in its settings")
    lines.append(f"Data protection officer: {dpo}" if dpo else "Data protection officer: none designated")
    return lines


def _profile(subject: dict[str, Any]) -> str:
    rows = [[label, subject.get(field) or "not given"] for field, label in PROFILE_FIELDS.items()]
    rows += [[f"Other contact ({kind})", value] for kind, value in sorted((subject.get("contact") or {}).items())]
    rows += [[f"Objection to {o['purpose']}", f"since {o['since']}"] for o in subject.get("objections") or []]
    rows += [
        [f"Privacy policy {a['version']}", f"accepted {a['accepted_at']} ({a['method'].replace('_', ' ')})"]
        for a in subject.get("policy_acceptances") or []
    ]
    hold = subject.get("legal_hold")
    if hold:
        rows.append(["Legal hold", f"kept since {hold['since']}: {', '.join(hold['categories'])}"])
    return pages.table(["", "Value"], rows)


def start(subject: dict[str, Any], record: dict[str, Any], now: datetime) -> str:
    """The page up to the rows of the conversations table."""
    return (
        pages.head(f"Your data held by {record['controller']}")
        + pages.paragraph(
            f"This is a copy of the personal data {record['controller']} holds about you, made on "
            f"{now.strftime('%d %B %Y at %H:%M UTC')}, with what the law says you must be told about it. "
            "The other files of this package hold the same data in forms a computer can read."
        )
        + pages.section("Who holds your data", pages.items(_who(record)))
        + pages.section("Your profile", _profile(subject))
        + "<section>\n<h2>Your conversations</h2>\n"
        + pages.paragraph("Every message of your conversations, oldest first.")
        + "<table>\n<thead><tr><th>When (UTC)</th><th>Channel</th><th>Written by</th><th>Conversation</th>"
        "<th>Message</th></tr></thead>\n<tbody>\n"
    )


ROLES = {"customer": "you", "agent": "an agent", "bot": "a bot"}


def interaction_row(row: Interaction) -> str:
    cells = [
        row.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
        row.channel or "",
        ROLES.get(row.role, row.role),
        row.conversation_id,
    ]
    text = f'<td class="text">{pages.esc(row.text)}</td>'
    return "<tr>" + "".join(f"<td>{pages.esc(c)}</td>" for c in cells) + text + "</tr>\n"


def end(record: dict[str, Any], count: int, files: list[str]) -> str:
    """The rest of the page, after `count` interactions; `files` are the package's."""
    purposes = [
        [
            PLAIN_PURPOSES.get(p["purpose"], p["description"]),
            PLAIN_BASES.get(p["legal_basis"], p["legal_basis"]),
            "You objected: your data is not used for it" if p["objected"] else "Yes",
        ]
        for p in record["purposes"]
    ]
    recipients = [
        [r["name"], r["purpose"], _plain(r["data_categories"]), r["country"], r.get("safeguard") or ""]
        for r in record["recipients"]
    ]
    contact = record.get("controller_contact") or record.get("dpo_contact")
    how = f"Write to {contact}" if contact else f"Write to {record['controller']}"
    rights = [f"{right['right'].capitalize()}: {right['how']}." for right in record["rights"]]
    return (
        "</tbody>\n</table>\n"
        + pages.paragraph(f"{count} messages in all." if count else "There are no messages.")
        + "</section>\n"
        + pages.section(
            "Why your data is used",
            pages.table(["Purpose", "Legal basis", "Used for it"], purposes),
        )
        + pages.section(
            "Who receives it",
            pages.table(["Recipient", "Why", "Data", "Country", "Safeguard outside the EEA"], recipients)
            if recipients
            else pages.paragraph("No one: the controller names no processor."),
        )
        + pages.section(
            "How long it is kept",
            pages.table(["Data", "Kept"], [[_plain([k]).capitalize(), v] for k, v in record["retention"].items()]),
        )
        + pages.section(
            "Your rights and how to use them",
            pages.paragraph(
                f"{how}, the controller, to use any of these rights. It must answer within one month, or tell you "
                "within that month why it needs longer (GDPR art. 12(3))."
            ),
            pages.items(rights),
            pages.items(_who(record)),
        )
        + pages.section("The files of this package", pages.items(f"{name}: {FILES[name]}" for name in files))
        + pages.TAIL
    )
