"""Deterministic, realistic business-partner data shared by every ERP simulator.

`company_record(i, seed)` always returns the same record for the same (seed, i), so a simulator can
seed a million customers without storing the generator's state, and two runs of a test see the same
data. Records are neutral (`name`, `city`, `phone`, ...); each simulator renames the fields to its own
wire shape. `mutate(record, rng, fields=...)` applies one day's worth of realistic edits (a new phone
number, a move, a credit-limit review, ...) to a record in any shape.

The data is deliberately not too clean: accents and apostrophes in names, names near the 60-character
limit most ERPs enforce, empty optional fields (no fax, no website, no second address line, Irish
addresses without an Eircode), inactive customers.
Pure standard library; 100,000 records take well under two seconds.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

DEFAULT_TODAY = date(2024, 6, 3)
NAME_LIMIT = 60  # CustomerName / CardName / Name lengths in the ERPs we simulate


@dataclass(frozen=True)
class Region:
    code: str  # state / province / county as the ERP stores it ("" when the country has none)
    cities: tuple[tuple[str, str, str], ...]  # (city, phone area code, postal prefix)


@dataclass(frozen=True)
class Country:
    name: str
    iso: str
    currency: str
    phone_prefix: str
    tld: str
    suffixes: tuple[str, ...]  # company legal forms, weighted by repetition
    regions: tuple[Region, ...]
    tax_group: str


def _cities(*items: str) -> tuple[tuple[str, str, str], ...]:
    """'City|area|postal-prefix' strings → tuples (keeps the tables below readable)."""
    return tuple(tuple(item.split("|")) for item in items)  # type: ignore[misc]


COUNTRIES: tuple[Country, ...] = (
    Country("United States", "US", "USD", "+1", "com", ("Inc.", "Inc.", "LLC", "LLC", "Corp.", "Co.", "Company"), (
        Region("CA", _cities("San Diego|619|921", "Los Angeles|213|900", "San José|408|951",
                             "Sacramento|916|958", "Fresno|559|937")),
        Region("NY", _cities("New York|212|100", "Buffalo|716|142", "Rochester|585|146", "Albany|518|122")),
        Region("TX", _cities("Austin|512|787", "Houston|713|770", "Dallas|214|752", "El Paso|915|799")),
        Region("IL", _cities("Chicago|312|606", "Springfield|217|627", "Peoria|309|616")),
        Region("WA", _cities("Seattle|206|981", "Spokane|509|992", "Tacoma|253|984")),
        Region("FL", _cities("Miami|305|331", "Orlando|407|328", "Tampa|813|336")),
        Region("MA", _cities("Boston|617|021", "Worcester|508|016")),
        Region("GA", _cities("Atlanta|404|303", "Savannah|912|314")),
        Region("CO", _cities("Denver|303|802", "Boulder|303|803")),
        Region("OH", _cities("Columbus|614|432", "Cleveland|216|441", "Cincinnati|513|452")),
    ), "USA"),
    Country("Canada", "CA", "CAD", "+1", "ca", ("Ltd.", "Ltd.", "Inc.", "Inc.", "Corp.", "Limited", "Ltée"), (
        Region("AB", _cities("Calgary|403|T2P", "Edmonton|780|T5J", "Red Deer|403|T4N")),
        Region("BC", _cities("Vancouver|604|V6B", "Victoria|250|V8W", "Kelowna|250|V1Y")),
        Region("ON", _cities("Toronto|416|M5V", "Ottawa|613|K1P", "Mississauga|905|L5B", "London|519|N6A")),
        Region("QC", _cities("Montréal|514|H3B", "Québec|418|G1R", "Trois-Rivières|819|G9A")),
        Region("MB", _cities("Winnipeg|204|R3C",)),
        Region("NS", _cities("Halifax|902|B3J",)),
    ), "CANADA"),
    Country("United Kingdom", "GB", "GBP", "+44", "co.uk", ("Ltd", "Ltd", "Ltd", "Limited", "PLC", "LLP"), (
        Region("", _cities("London|20|EC", "London|20|SW", "Manchester|161|M", "Birmingham|121|B",
                           "Leeds|113|LS", "Bristol|117|BS", "Glasgow|141|G", "Edinburgh|131|EH",
                           "Cardiff|29|CF", "Belfast|28|BT")),
    ), "UK"),
    Country("Germany", "DE", "EUR", "+49", "de", ("GmbH", "GmbH", "GmbH", "AG", "KG", "GmbH & Co. KG", "e.K."), (
        Region("BE", _cities("Berlin|30|10",)),
        Region("BY", _cities("München|89|80", "Nürnberg|911|90", "Augsburg|821|86")),
        Region("HH", _cities("Hamburg|40|20",)),
        Region("NW", _cities("Köln|221|50", "Düsseldorf|211|40", "Dortmund|231|44")),
        Region("HE", _cities("Frankfurt am Main|69|60", "Wiesbaden|611|65")),
        Region("BW", _cities("Stuttgart|711|70", "Mannheim|621|68")),
    ), "EU"),
    Country("France", "FR", "EUR", "+33", "fr", ("SA", "SAS", "SAS", "SARL", "SARL", "EURL"), (
        Region("", _cities("Paris|1|75", "Lyon|4|69", "Marseille|4|13", "Toulouse|5|31", "Lille|3|59",
                           "Nantes|2|44", "Bordeaux|5|33", "Strasbourg|3|67")),
    ), "EU"),
    Country("Australia", "AU", "AUD", "+61", "com.au", ("Pty Ltd", "Pty Ltd", "Pty Ltd", "Ltd"), (
        Region("NSW", _cities("Sydney|2|20", "Newcastle|2|23", "Wollongong|2|25")),
        Region("VIC", _cities("Melbourne|3|30", "Geelong|3|32")),
        Region("QLD", _cities("Brisbane|7|40", "Gold Coast|7|42", "Cairns|7|48")),
        Region("WA", _cities("Perth|8|60",)),
        Region("SA", _cities("Adelaide|8|50",)),
    ), "AUS"),
    Country("Ireland", "IE", "EUR", "+353", "ie", ("Ltd", "Ltd", "Limited", "DAC", "Teoranta"), (
        Region("Co. Dublin", _cities("Dublin|1|D02", "Dún Laoghaire|1|A96")),
        Region("Co. Cork", _cities("Cork|21|T12",)),
        Region("Co. Galway", _cities("Galway|91|H91",)),
        Region("Co. Limerick", _cities("Limerick|61|V94",)),
    ), "EU"),
    Country("South Africa", "ZA", "ZAR", "+27", "co.za", ("(Pty) Ltd", "(Pty) Ltd", "Ltd", "CC"), (
        Region("GP", _cities("Johannesburg|11|20", "Pretoria|12|00")),
        Region("WC", _cities("Cape Town|21|80", "Stellenbosch|21|76")),
        Region("KZN", _cities("Durban|31|40",)),
    ), "ZA"),
)
COUNTRY_BY_NAME = {c.name: c for c in COUNTRIES} | {c.iso: c for c in COUNTRIES}
# Most customers are domestic (a North American Sage/B1 shop), some are international.
_COUNTRY_WEIGHTED = (COUNTRIES[0],) * 9 + (COUNTRIES[1],) * 6 + (COUNTRIES[2],) * 2 + COUNTRIES[3:]

ADJECTIVES = (
    "Acme", "Allied", "Apex", "Atlas", "Blue Ridge", "Bright", "Cardinal", "Cascade", "Central", "Coastal",
    "Consolidated", "Continental", "Crown", "Delta", "Eagle", "Eastern", "Evergreen", "First", "Frontier",
    "General", "Global", "Golden", "Granite", "Great Lakes", "Harbor", "Heritage", "Highland", "Horizon",
    "Imperial", "Independent", "Keystone", "Liberty", "Lone Star", "Maple Leaf", "Meridian", "Metro",
    "Midwest", "Mountain", "National", "North Star", "Northern", "Oak", "Pacific", "Paramount", "Patriot",
    "Pinnacle", "Pioneer", "Premier", "Prime", "Quality", "Redwood", "Regal", "Reliable", "Riverside",
    "Royal", "Silver", "Southern", "Sterling", "Summit", "Sun", "Superior", "Titan", "Tri-County",
    "Union", "United", "Valley", "Vanguard", "Victory", "Western", "Zenith", "Nordic", "Polar",
)
NOUNS = (
    "Supply", "Distribution", "Industries", "Manufacturing", "Logistics", "Trading", "Foods", "Beverages",
    "Electric", "Plumbing", "Hardware", "Lumber", "Steel", "Plastics", "Packaging", "Textiles", "Furniture",
    "Office Products", "Medical Supply", "Pharmacy", "Auto Parts", "Tire", "Marine", "Aviation", "Farms",
    "Dairy", "Bakery", "Coffee", "Brewing", "Winery", "Paper", "Printing", "Signs", "Electronics",
    "Software", "Systems", "Networks", "Telecom", "Energy", "Solar", "Fuel", "Chemicals", "Coatings",
    "Tools", "Machinery", "Equipment Rental", "Construction", "Builders", "Roofing", "Landscaping",
    "Cleaning Services", "Security", "Consulting", "Engineering", "Labs", "Instruments", "Optical",
    "Sporting Goods", "Outfitters", "Pet Supply", "Garden Centre", "Home Improvement", "Appliances",
)
SURNAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
    "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Campbell",
    "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker", "Collins", "Edwards",
    "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Reed", "Bailey", "Bell",
    "O'Brien", "O'Connor", "O'Neill", "D'Angelo", "McDonald", "MacLeod", "Nguyen", "Tremblay", "Gagné",
    "Côté", "Bélanger", "Lévesque", "Müller", "Schröder", "Weiß", "Groß", "Fischer", "Schäfer", "Dubois",
    "Lefèvre", "Moreau", "Peña", "Núñez", "García", "Ødegaard", "Søndergaard", "Kowalski", "Łukasik",
    "van der Berg", "de Vries", "Van Heerden", "Naidoo", "Patel", "Singh", "Kim", "Chen", "Wong", "Tanaka",
)
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley",
    "Paul", "Emily", "Andrew", "Michelle", "Joshua", "Amanda", "Kevin", "Melissa", "Brian", "Stephanie",
    "Sean", "Siobhán", "Aoife", "Niamh", "François", "Amélie", "Hélène", "Jérôme", "José", "María",
    "Jürgen", "Björn", "Søren", "Zoë", "Chloé", "Renée", "Raphaël", "Priya", "Wei", "Yuki", "Thabo",
    "Lerato", "Olivia", "Liam", "Noah", "Emma", "Ava", "Mia", "Lucas", "Ethan", "Grace", "Hannah",
)
STREET_NAMES = (
    "Main", "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "River", "Church",
    "Market", "King", "Queen", "Victoria", "Bridge", "Mill", "Station", "High", "Industrial", "Commerce",
    "Enterprise", "Harbour", "Spring", "Sunset", "Wellington", "Dundas", "Yonge", "O'Connell",
    "Grafton", "Collins", "George", "Adderley", "Long", "Jan Smuts", "Airport", "Technology", "Research",
    "St. Mary's", "Côte-des-Neiges",
)
STREET_NAMES_DE = ("Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Goethestraße", "Industriestraße",
                   "Am Hafen", "Königsallee", "Friedrichstraße", "Gewerbepark", "Lindenweg", "Mühlenweg")
STREET_NAMES_FR = ("rue de la Paix", "avenue des Champs-Élysées", "boulevard Haussmann", "rue du Commerce",
                   "rue de l'Industrie", "avenue Jean-Jaurès", "quai des Chartrons", "rue Sainte-Catherine",
                   "place Bellecour", "zone d'activités du Parc")
STREET_TYPES = ("St.", "Street", "Ave.", "Avenue", "Rd.", "Road", "Blvd.", "Drive", "Dr.", "Way", "Lane",
                "Pkwy", "Crescent", "Court", "Place")
UNIT_LINES = ("Suite {n}", "Unit {n}", "Floor {f}", "Building {b}", "Ste {n}", "PO Box {p}", "Dock {d}",
              "Attn: Accounts Payable")
TERMS = ("NET30",) * 10 + ("NET15",) * 3 + ("NET45",) * 2 + ("NET60",) * 2 + ("DUETBL",) * 3 + ("COD",) * 2 + (
    "2%10N", "EOM", "PREPAY")
GROUPS = ("RTL",) * 4 + ("WHL",) * 4 + ("DIST",) * 3 + ("MFG",) * 3 + ("GOV", "EDU", "INTL", "KEY", "SVC")
TERMS_UNIQUE = tuple(dict.fromkeys(TERMS))  # ordered: sets iterate differently per process
GROUPS_UNIQUE = tuple(dict.fromkeys(GROUPS))
CREDIT_LIMITS = (0, 1000, 2500, 2500, 5000, 5000, 5000, 7500, 10000, 10000, 10000, 15000, 20000, 25000,
                 25000, 50000, 50000, 75000, 100000, 150000, 250000, 500000, 1000000)
SALESPEOPLE = ("MLB", "JDH", "KRS", "PAT", "SWT", "DLC", "EMR", "GRV")
PRICE_LISTS = ("STD", "STD", "STD", "WHSL", "RETAIL", "GOV", "KEY")
FAMILY_FORMS = ("& Sons", "Brothers", "& Daughters", "Family")
GROUP_FORMS = ("International", "of North America", "Holdings", "Group")
EMAIL_LOCALS = ("info", "sales", "accounts", "ap", "orders", "office", "admin", "billing", "hello")


_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=8192)  # inputs are vocabulary words, so nearly every call is a cache hit
def _ascii_slug(text: str) -> str:
    """'Côté & Fils Ltée' → 'cotefilsltee' (domains and email locals are ASCII)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_ALNUM.sub("", plain.lower())


def _rng_for(i: int, seed: int) -> random.Random:
    return random.Random(((seed & 0xFFFFFFFF) << 32) | (i & 0xFFFFFFFF))


def _pick(rnd, items):  # faster than Random.choice; the hottest paths inline the same expression
    return items[int(rnd() * len(items))]


def phone_number(country: Country, area: str, rng: random.Random) -> str:
    rnd = rng.random
    n = int(rnd() * 10_000)
    if country.iso in ("US", "CA"):
        # 555-01xx is the reserved fictional range; vary the exchange a little for realism.
        return f"({area}) {_pick(rnd, ('555', '555', '555', '321', '468', '730'))}-{n:04d}"
    local = f"{int(rnd() * 9000) + 1000} {n:04d}"
    return f"{country.phone_prefix} {area} {local}"


def postal_code(country: Country, prefix: str, rng: random.Random) -> str:
    rnd = rng.random
    letters = "ABCEGHJKLMNPRSTVWXYZ"
    if country.iso == "US":
        code = f"{prefix}{int(rnd() * 100):02d}"
        return code + (f"-{int(rnd() * 10000):04d}" if rnd() < 0.15 else "")
    if country.iso == "CA":
        return f"{prefix} {int(rnd() * 10)}{_pick(rnd, letters)}{int(rnd() * 10)}"
    if country.iso == "GB":
        return f"{prefix}{int(rnd() * 20) + 1} {int(rnd() * 10)}{_pick(rnd, letters)}{_pick(rnd, letters)}"
    if country.iso == "IE":
        if rnd() < 0.3:
            return ""  # plenty of Irish addresses are written without an Eircode
        return f"{prefix} {_pick(rnd, letters)}{int(rnd() * 1000):03d}"
    if country.iso in ("DE", "FR"):
        return f"{prefix}{int(rnd() * 1000):03d}"
    return f"{prefix}{int(rnd() * 100):02d}"  # AU, ZA: four digits


def street_line(country: Country, rng: random.Random) -> str:
    rnd = rng.random
    number = int(rnd() * 9800) + 1 if rnd() < 0.8 else int(rnd() * 99) + 1
    if country.iso == "DE":
        return f"{_pick(rnd, STREET_NAMES_DE)} {number % 200 + 1}"
    if country.iso == "FR":
        return f"{number % 150 + 1}{_pick(rnd, ('', '', '', ' bis'))} {_pick(rnd, STREET_NAMES_FR)}"
    return f"{number} {_pick(rnd, STREET_NAMES)} {_pick(rnd, STREET_TYPES)}"


def company_name(rng: random.Random, country: Country, city: str) -> str:
    rnd = rng.random
    suffix = country.suffixes[int(rnd() * len(country.suffixes))]
    roll = rnd()
    if roll < 0.35:
        base = f"{ADJECTIVES[int(rnd() * len(ADJECTIVES))]} {NOUNS[int(rnd() * len(NOUNS))]}"
    elif roll < 0.55:
        base = f"{SURNAMES[int(rnd() * len(SURNAMES))]} {NOUNS[int(rnd() * len(NOUNS))]}"
    elif roll < 0.68:
        base = f"{SURNAMES[int(rnd() * len(SURNAMES))]} & {SURNAMES[int(rnd() * len(SURNAMES))]}"
    elif roll < 0.78:
        base = f"{city} {NOUNS[int(rnd() * len(NOUNS))]}"
    elif roll < 0.86:
        base = f"{SURNAMES[int(rnd() * len(SURNAMES))]}'s {NOUNS[int(rnd() * len(NOUNS))]}"
    elif roll < 0.92:
        base = f"{SURNAMES[int(rnd() * len(SURNAMES))]} {_pick(rnd, FAMILY_FORMS)}"
    elif roll < 0.97:
        # long, formal names that run into the 60-character limit
        base = (f"{ADJECTIVES[int(rnd() * len(ADJECTIVES))]} {NOUNS[int(rnd() * len(NOUNS))]} "
                f"and {NOUNS[int(rnd() * len(NOUNS))]} {_pick(rnd, GROUP_FORMS)}")
    else:
        # shouty legacy data entry
        base = f"{ADJECTIVES[int(rnd() * len(ADJECTIVES))]} {NOUNS[int(rnd() * len(NOUNS))]}".upper()
    name = f"{base} {suffix}" if rnd() < 0.85 else base
    return name[:NAME_LIMIT].rstrip()


def company_record(i: int, seed: int = 0, *, today: date | None = None) -> dict[str, Any]:
    """The i-th company of a data set: same (seed, i, today) → same record, always."""
    rng = _rng_for(i, seed)
    rnd = rng.random
    today = today or DEFAULT_TODAY
    country = _COUNTRY_WEIGHTED[int(rnd() * len(_COUNTRY_WEIGHTED))]
    region = country.regions[int(rnd() * len(country.regions))]
    city, area, prefix = region.cities[int(rnd() * len(region.cities))]
    name = company_name(rng, country, city)
    first, last = FIRST_NAMES[int(rnd() * len(FIRST_NAMES))], SURNAMES[int(rnd() * len(SURNAMES))]
    words = name.split(" ")
    domain_word = _ascii_slug(words[0]) or "company"
    second = _ascii_slug(words[1]) if len(words) > 1 and words[1] != "&" else ""
    domain = f"{domain_word}{second if len(domain_word) + len(second) <= 20 else ''}.{country.tld}"
    has_web = rnd() < 0.8
    email = ""
    if rnd() < 0.9:
        if rnd() < 0.6:
            email = f"{EMAIL_LOCALS[int(rnd() * len(EMAIL_LOCALS))]}@{domain}"
        else:
            email = f"{_ascii_slug(first)}.{_ascii_slug(last)}@{domain}"
    address2 = ""
    if rnd() < 0.3:
        address2 = UNIT_LINES[int(rnd() * len(UNIT_LINES))].format(
            n=int(rnd() * 900) + 100, f=int(rnd() * 30) + 1, b=_pick(rnd, "ABCDEFG"),
            p=int(rnd() * 9000) + 100, d=int(rnd() * 20) + 1)
    started = today - timedelta(days=30 + int(rnd() * 3650))
    # Most records were last touched long ago, a few recently.
    age = int((rnd() ** 0.7) * (today - started).days)
    last_changed = max(started, today - timedelta(days=age + 1))
    active = rnd() >= 0.08
    credit = CREDIT_LIMITS[int(rnd() * len(CREDIT_LIMITS))]
    return {
        "index": i,
        "name": name,
        "short_name": name[:10].rstrip(),
        "contact_first": first,
        "contact_last": last,
        "contact_name": f"{first} {last}" if rnd() < 0.93 else "",
        "contact_email": f"{_ascii_slug(first)[:1]}{_ascii_slug(last)}@{domain}" if rnd() < 0.5 else "",
        "address1": street_line(country, rng),
        "address2": address2,
        "address3": "",
        "address4": "",
        "city": city,
        "state": region.code,
        "postal_code": postal_code(country, prefix, rng),
        "country": country.name,
        "country_code": country.iso,
        "phone": phone_number(country, area, rng),
        "fax": phone_number(country, area, rng) if rnd() < 0.35 else "",
        "email": email,
        "website": (f"www.{domain}" if rnd() < 0.7 else f"https://{domain}") if has_web else "",
        "terms": TERMS[int(rnd() * len(TERMS))],
        "group": GROUPS[int(rnd() * len(GROUPS))],
        "credit_limit": credit,
        "balance": round(credit * rnd() * 0.9, 2) if credit else 0.0,
        "currency": country.currency,
        "tax_group": country.tax_group,
        "salesperson": SALESPEOPLE[int(rnd() * len(SALESPEOPLE))],
        "price_list": PRICE_LISTS[int(rnd() * len(PRICE_LISTS))],
        "active": active,
        "inactive_since": (last_changed if not active else None),
        "started": started,
        "last_changed": last_changed,
    }


def companies(count: int, seed: int = 0, *, start: int = 0,
              today: date | None = None) -> Iterator[dict[str, Any]]:
    for i in range(start, start + count):
        yield company_record(i, seed, today=today)


# --- people and products ---------------------------------------------------------------------------

POSITIONS = ("Purchasing Manager", "Buyer", "Accounts Payable", "Owner", "Operations Manager", "Office Manager",
             "CFO", "Controller", "Warehouse Lead", "Sales Director", "", "")
PRODUCT_ADJECTIVES = ("Standard", "Heavy-Duty", "Compact", "Premium", "Economy", "Industrial", "Deluxe",
                      "Stainless", "Ergonomic", "Recycled", "Wireless", "Adjustable")
PRODUCTS = (
    ("Office Chair", 149.0), ("Standing Desk", 429.0), ("Filing Cabinet", 189.0), ("Bookcase", 119.0),
    ("Conference Table", 899.0), ("Monitor Arm", 79.0), ("Desk Lamp", 39.0), ("Whiteboard", 95.0),
    ("Printer Paper (case)", 42.5), ("Toner Cartridge", 64.0), ("Laser Printer", 329.0), ("Shredder", 159.0),
    ("Pallet Jack", 389.0), ("Shelving Unit", 249.0), ("Safety Gloves (box)", 18.75), ("Hard Hat", 22.0),
    ("Ladder", 135.0), ("Tool Chest", 279.0), ("Cordless Drill", 119.0), ("Extension Cord", 24.5),
    ("Coffee Beans (kg)", 21.0), ("Water Cooler", 199.0), ("First Aid Kit", 45.0), ("Label Printer", 89.0),
)
PACK_SIZES = ("", "", "", " (2-pack)", " (4-pack)", " – Black", " – Grey", " – White", " – Oak")


def contact_record(company: Mapping[str, Any], j: int, seed: int = 0) -> dict[str, Any]:
    """The j-th contact person of `company` (a company_record): same inputs → same person.
    Some contacts lack a phone, a mobile or an email, as real address books do."""
    rng = _rng_for(company["index"] * 8 + j, seed ^ 0x5EED)
    rnd = rng.random
    country = COUNTRY_BY_NAME.get(company["country_code"], COUNTRIES[0])
    first, last = FIRST_NAMES[int(rnd() * len(FIRST_NAMES))], SURNAMES[int(rnd() * len(SURNAMES))]
    if j == 0 and company["contact_name"]:
        first, _, last = company["contact_name"].partition(" ")
    domain = company["email"].partition("@")[2] or company["website"].removeprefix("https://").removeprefix("www.")
    phone = company["phone"]
    area = phone[1:4] if phone.startswith("(") else (phone.split() + ["", "20"])[1]
    return {
        "first_name": first,
        "last_name": last,
        "position": POSITIONS[int(rnd() * len(POSITIONS))],
        "phone": phone_number(country, area, rng) if rnd() < 0.8 else "",
        "mobile": phone_number(country, area, rng) if rnd() < 0.6 else "",
        "email": f"{_ascii_slug(first)}.{_ascii_slug(last)}@{domain}" if rnd() < 0.85 and domain else "",
        "active": rnd() >= 0.1,
    }


def product_record(i: int, seed: int = 0) -> dict[str, Any]:
    """The i-th product of a catalogue: name, base price, stock per warehouse (deterministic)."""
    rng = _rng_for(i, seed ^ 0xC0FFEE)
    rnd = rng.random
    noun, base = PRODUCTS[int(rnd() * len(PRODUCTS))]
    adjective = PRODUCT_ADJECTIVES[int(rnd() * len(PRODUCT_ADJECTIVES))]
    price = round(base * (0.8 + rnd() * 0.6), 2)
    stock = [int(rnd() * 400) if rnd() < 0.85 else 0 for _ in range(3)]
    return {
        "index": i,
        "name": f"{adjective} {noun}{PACK_SIZES[int(rnd() * len(PACK_SIZES))]}"[:NAME_LIMIT],
        "price": price,
        "stock": stock,
        "committed": [int(s * rnd() * 0.3) for s in stock],
        "ordered": [int(rnd() * 100) if rnd() < 0.3 else 0 for _ in stock],
        "group": int(rnd() * 4),
        "inventory": rnd() >= 0.05,  # a few services / non-stock items
        "barcode": f"{int(rnd() * 10**12):012d}",
    }


# --- day-to-day edits ------------------------------------------------------------------------------

def _country_of(record: Mapping[str, Any], fields: Mapping[str, str]) -> Country:
    value = record.get(fields.get("country", ""), "") or record.get(fields.get("country_code", ""), "")
    return COUNTRY_BY_NAME.get(str(value), COUNTRIES[0])


def _edit_phone(record, fields, rng):
    country = _country_of(record, fields)
    area = next((a for r in country.regions for c, a, _ in r.cities if c == record.get(fields.get("city"))),
                country.regions[0].cities[0][1])
    return {"phone": phone_number(country, area, rng)}


def _edit_email(record, fields, rng):
    current = str(record.get(fields["email"]) or "")
    domain = current.partition("@")[2] or f"{_ascii_slug(str(record.get(fields.get('name'), 'co')))[:12]}.com"
    return {"email": f"{rng.choice(EMAIL_LOCALS)}@{domain}"}


def _edit_move(record, fields, rng):
    country = _country_of(record, fields)
    region = rng.choice(country.regions)
    city, _, prefix = rng.choice(region.cities)
    return {"address1": street_line(country, rng), "city": city, "state": region.code,
            "postal_code": postal_code(country, prefix, rng)}


def _edit_address2(record, fields, rng):
    if record.get(fields["address2"]):
        return {"address2": ""}
    return {"address2": f"Suite {rng.randint(100, 999)}"}


def _edit_contact(record, fields, rng):
    return {"contact_name": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"}


def _edit_credit(record, fields, rng):
    try:
        current = float(record.get(fields["credit_limit"]) or 0)
    except (TypeError, ValueError):
        current = 0.0
    factor = rng.choice((0.5, 0.75, 1.25, 1.5, 2.0))
    new = int(round(max(current, 1000) * factor, -3))
    return {"credit_limit": float(new) if isinstance(record.get(fields["credit_limit"]), float) else new}


def _edit_terms(record, fields, rng):
    current = record.get(fields["terms"])
    return {"terms": rng.choice([t for t in TERMS_UNIQUE if t != current])}


def _edit_group(record, fields, rng):
    current = record.get(fields["group"])
    return {"group": rng.choice([g for g in GROUPS_UNIQUE if g != current])}


def _edit_name(record, fields, rng):
    name = str(record.get(fields["name"]) or "")
    for old, new in ((" Ltd.", " Limited"), (" Ltd", " Limited"), (" Inc.", " Incorporated"),
                     (" Corp.", " Corporation"), (" Co.", " Company"), (" & ", " and ")):
        if old in name:
            return {"name": name.replace(old, new, 1)[:NAME_LIMIT]}
    return {"name": f"{name} (Holdings)"[:NAME_LIMIT]}


def _edit_website(record, fields, rng):
    current = str(record.get(fields["website"]) or "")
    if current.startswith("www."):
        return {"website": "https://" + current[4:]}
    if current:
        return {"website": ""}
    email = str(record.get(fields.get("email", ""), "") or "")
    return {"website": "www." + (email.partition("@")[2] or "example.com")}


def _edit_fax(record, fields, rng):
    return {"fax": ""} if record.get(fields["fax"]) else {"fax": _edit_phone(record, fields, rng)["phone"]}


def _edit_status(record, fields, rng):
    value = record.get(fields["active"])
    if isinstance(value, str):  # ERPs store the flag as an enum name or a letter
        flips = {"Active": "Inactive", "Inactive": "Active", "Y": "N", "N": "Y", "tYES": "tNO", "tNO": "tYES"}
        return {"active": flips.get(value, value)}
    return {"active": not value}


# (edit, neutral fields it needs, relative weight)
_EDITS = (
    (_edit_phone, ("phone",), 5),
    (_edit_email, ("email",), 4),
    (_edit_move, ("address1", "city", "state", "postal_code"), 3),
    (_edit_address2, ("address2",), 2),
    (_edit_contact, ("contact_name",), 4),
    (_edit_credit, ("credit_limit",), 5),
    (_edit_terms, ("terms",), 3),
    (_edit_group, ("group",), 1),
    (_edit_name, ("name",), 2),
    (_edit_website, ("website",), 2),
    (_edit_fax, ("fax",), 1),
    (_edit_status, ("active",), 1),
)
NEUTRAL_FIELDS = {name: name for name in (
    "name", "contact_name", "address1", "address2", "city", "state", "postal_code", "country", "country_code",
    "phone", "fax", "email", "website", "terms", "group", "credit_limit", "active")}


def mutate(record: MutableMapping[str, Any], rng: random.Random,
           fields: Mapping[str, str] | None = None) -> list[str]:
    """Apply 1–3 realistic edits in place (a move rewrites the street, city, region and postal code
    together); returns the record keys that changed, never empty when an edit was possible.

    `fields` maps neutral names (`phone`, `city`, `credit_limit`, `active`, ...) to the record's own keys
    (`PhoneNumber`, `City`, ...); edits whose fields the record lacks are not offered.
    """
    fields = NEUTRAL_FIELDS if fields is None else fields
    offered = [(edit, weight) for edit, needs, weight in _EDITS if all(n in fields for n in needs)]
    if not offered:
        return []
    wanted = rng.choice((1, 1, 1, 2, 2, 3))
    changed: list[str] = []
    applied = 0
    while offered and applied < wanted:
        # distinct edits (they touch distinct fields, so a later edit never undoes an earlier one)
        pick = rng.choices(range(len(offered)), weights=[w for _, w in offered])[0]
        edit = offered.pop(pick)[0]
        hit = False
        for neutral, value in edit(record, fields, rng).items():
            key = fields.get(neutral)
            if key is None or value is None or record.get(key) == value:
                continue
            record[key] = value
            hit = True
            if key not in changed:
                changed.append(key)
        applied += hit
    return changed
