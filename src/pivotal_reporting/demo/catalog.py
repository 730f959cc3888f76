"""Who is in the demo: organizations, their people and the words names are built from.

Everything here is plain data; the SQL in the sibling modules turns it into rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from pivotal_reporting.auth.principal import EXPORT_REPORTS, VIEW_AUDIT_LOGS, VIEW_REPORTS

# The data is anchored on a fixed instant, not now(), so it is identical on every run.
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
# Activity spans 104 weeks of working days ending the Friday before the anchor.
FIRST_MONDAY = date(2024, 11, 4)
WORKING_DAYS = 520
# Business rows are numbered with this many digits, so ids sort chronologically.
ROW_DIGITS = 8
MAX_SCALE = 10**ROW_DIGITS - 1
MAX_ORGS = 50


@dataclass(frozen=True)
class OrgProfile:
    slug: str
    name: str
    timezone: str
    base_currency: str
    # The other currency billed, and its share of quotes, invoices and payments.
    second_currency: str
    second_share: float
    legal_forms: tuple[str, ...]
    people: tuple[str, str, str]  # display names of the viewer, exporter and admin


PROFILES: tuple[OrgProfile, ...] = (
    OrgProfile(
        "acme",
        "Acme Consulting",
        "America/New_York",
        "USD",
        "EUR",
        0.2,
        ("Inc.", "LLC", "Corp.", "Group"),
        ("Vera Lindqvist", "Ethan Brooks", "Alex Morgan"),
    ),
    OrgProfile(
        "nordlicht",
        "Nordlicht Beratung GmbH",
        "Europe/Berlin",
        "EUR",
        "CHF",
        0.15,
        ("GmbH", "AG", "KG", "SE"),
        ("Jana Vogel", "Lukas Becker", "Miriam Hoffmann"),
    ),
    OrgProfile(
        "harbourfinch",
        "Harbour & Finch Advisory",
        "Europe/London",
        "GBP",
        "EUR",
        0.15,
        ("Ltd", "LLP", "plc"),
        ("Olivia Hughes", "Harry Patel", "Charlotte Evans"),
    ),
    OrgProfile(
        "meridian",
        "Meridian Project Partners",
        "Asia/Singapore",
        "SGD",
        "USD",
        0.3,
        ("Pte. Ltd.", "Holdings Pte. Ltd."),
        ("Wei Ling Tan", "Arjun Nair", "Grace Lim"),
    ),
    OrgProfile(
        "summit",
        "Summit Ridge Engineering",
        "America/Denver",
        "USD",
        "CAD",
        0.05,
        ("Inc.", "LLC", "Co."),
        ("Dakota Reyes", "Sam Whitaker", "Jordan Ellis"),
    ),
    OrgProfile(
        "maple",
        "Maple Leaf Analytics",
        "America/Toronto",
        "CAD",
        "USD",
        0.25,
        ("Inc.", "Ltd.", "Corp."),
        ("Chloe Tremblay", "Noah Gagnon", "Emma Roy"),
    ),
    OrgProfile(
        "lumen",
        "Lumen Studio SAS",
        "Europe/Paris",
        "EUR",
        "GBP",
        0.1,
        ("SAS", "SARL", "SA"),
        ("Camille Durand", "Hugo Lefebvre", "Léa Moreau"),
    ),
    OrgProfile(
        "kauri",
        "Kauri Digital",
        "Pacific/Auckland",
        "NZD",
        "AUD",
        0.2,
        ("Ltd", "Limited"),
        ("Aroha Ngata", "Liam Walker", "Isla Thompson"),
    ),
)

DEMO_ORG_ID = "org_acme"
DEMO_USER_ID = "usr_acme_admin"

# The access levels every demo organization has, as (user suffix, role name, permissions).
ACCESS_LEVELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("viewer", "Finance viewer", (VIEW_REPORTS,)),
    ("exporter", "Finance exporter", (VIEW_REPORTS, EXPORT_REPORTS)),
    ("admin", "Administrator", (VIEW_REPORTS, EXPORT_REPORTS, VIEW_AUDIT_LOGS)),
)
MANAGER_ROLE = ("manager", "Delivery manager", (VIEW_REPORTS,))
CONSULTANT_ROLE = ("consultant", "Consultant", ())

# fmt: off
COMPANY_WORDS = (
    "Northwind", "Bluefin", "Cedar", "Granite", "Harbor", "Ironwood", "Juniper", "Keystone",
    "Lakeside", "Maple", "Oakridge", "Pinnacle", "Quarry", "Redwood", "Silverline", "Trident",
    "Union", "Vantage", "Westfield", "Yellowstone", "Atlas", "Beacon", "Cobalt", "Delta",
    "Evergreen", "Falcon", "Goldcrest", "Horizon", "Insight", "Jasper", "Kingfisher", "Lighthouse",
    "Meridian", "Nova", "Orchid", "Pioneer", "Riverside", "Sterling", "Tidewater", "Summit",
)
INDUSTRY_WORDS = (
    "Logistics", "Health", "Foods", "Manufacturing", "Capital", "Energy", "Pharma", "Retail",
    "Media", "Telecom", "Insurance", "Analytics", "Robotics", "Hospitality", "Realty", "Aerospace",
    "Biotech", "Freight", "Software", "Textiles", "Mining", "Utilities", "Learning", "Partners",
    "Holdings", "Labs", "Outfitters", "Brewing", "Marine", "Solar",
)
# Prefixed to names once the word combinations run out (very large scales).
PLACE_WORDS = (
    "Pacific", "Atlantic", "Midwest", "Northern", "Southern", "Eastern", "Western", "Central",
    "Coastal", "Alpine", "Prairie", "Metro",
)
PROJECT_WORDS = (
    "ERP Rollout", "Cloud Migration", "Annual Audit Support", "Data Warehouse", "Website Redesign",
    "Security Assessment", "Process Optimization", "CRM Implementation", "Mobile App",
    "Compliance Review", "Supply Chain Study", "Brand Strategy", "Network Upgrade",
    "Payroll Integration", "Market Entry Study", "Cost Reduction Program",
    "Digital Transformation", "Training Program", "IT Helpdesk Retainer", "Tax Advisory",
    "Due Diligence", "Analytics Dashboard", "API Platform", "Office Relocation",
)
ACTIVITY_WORDS = (
    "Workshop with client stakeholders", "Requirements analysis", "Solution design",
    "Implementation", "Code review", "Testing and QA", "Data migration", "Status meeting",
    "Documentation", "Training session", "Travel", "Internal planning", "Support ticket triage",
    "Report preparation", "Deployment", "Research",
)
FIRST_NAMES = (
    "Ava", "Ben", "Carla", "Daniel", "Elena", "Felix", "Gina", "Hassan", "Ines", "Jonas", "Kara",
    "Leo", "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Stefan", "Tara", "Uma", "Victor",
    "Wen", "Xavier", "Yara", "Zoe", "Aiden", "Bianca", "Caleb", "Diana", "Emil", "Farah", "Gustav",
    "Hana", "Ivan", "Julia", "Kenji", "Lina", "Marco", "Nora",
)
LAST_NAMES = (
    "Adler", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Huang", "Ito", "Jensen",
    "Kowalski", "Larsen", "Müller", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Schmidt",
    "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zimmermann", "Andersson", "Bianchi",
    "Chen", "Dias", "Evans", "Fontaine", "Gruber", "Horvat", "Iyer", "Johansson", "Kim", "Lopez",
    "Moreau", "Novak",
)
# fmt: on


@dataclass(frozen=True)
class DemoOrg:
    """One organization to load: its profile, id and row counts."""

    profile: OrgProfile
    org_id: str
    slug: str
    name: str
    rows: int  # quotes, invoices, payments and time entries each
    customers: int
    staff: int
    managers: int

    def user_id(self, suffix: str) -> str:
        return f"usr_{self.slug}_{suffix}"

    def role_id(self, suffix: str) -> str:
        return f"role_{self.slug}_{suffix}"

    @property
    def email_domain(self) -> str:
        return f"{self.slug}.example"


def all_demo_org_ids() -> list[str]:
    """Every id a demo organization can have: what a reload deletes first."""
    return [demo_org(index, rows=1).org_id for index in range(MAX_ORGS)]


def demo_org(index: int, *, rows: int) -> DemoOrg:
    """The ``index``-th demo organization (0-based) sized for ``rows`` rows per table."""
    profile = PROFILES[index % len(PROFILES)]
    slug, name = profile.slug, profile.name
    if index >= len(PROFILES):
        slug = f"demo{index + 1:02d}"
        name = f"{profile.name} {index // len(PROFILES) + 1}"
    staff = max(6, min(500, rows // 1500))
    return DemoOrg(
        profile=profile,
        org_id=f"org_{slug}",
        slug=slug,
        name=name,
        rows=rows,
        customers=max(5, rows // 100),
        staff=staff,
        managers=max(2, staff // 8),
    )


def demo_orgs(orgs: int, scale: int) -> list[DemoOrg]:
    """The first org gets ``scale`` rows per table; the others a tenth (at least 100)."""
    if not 1 <= orgs <= MAX_ORGS:
        raise ValueError(f"orgs must be between 1 and {MAX_ORGS}")
    if not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be between 1 and {MAX_SCALE}")
    smaller = min(scale, max(100, scale // 10))
    return [demo_org(i, rows=scale if i == 0 else smaller) for i in range(orgs)]
