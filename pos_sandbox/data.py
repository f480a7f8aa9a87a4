"""The sandbox's customers: generated from (seed, vendor, index), with only changes kept in memory.

Record `i` of a vendor is a pure function of the seed, the vendor and `i`, so a dataset of a million
customers costs nothing until a page is asked for. Modification times grow with the index, which makes
"modified since T" a bisect; records changed, created or deleted while the sandbox runs live in a small
overlay that every query merges in.
"""

from __future__ import annotations

import random
import re
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from hashlib import blake2b
from typing import Any, NamedTuple

from .render import DAYS as _days
from .render import day_text as _day

# Generated modification times are spread over these years; fixed, so the same seed gives the same data
# whatever day it runs. Creation times go back up to four more years.
EPOCH_START_MS = int(datetime(2019, 1, 1, tzinfo=UTC).timestamp() * 1000)
EPOCH_END_MS = int(datetime(2026, 6, 30, tzinfo=UTC).timestamp() * 1000)
SPAN_MS = EPOCH_END_MS - EPOCH_START_MS
EARLIEST_CREATED_MS = int(datetime(2015, 1, 1, tzinfo=UTC).timestamp() * 1000)
MAX_CUSTOMERS = 5_000_000  # ids and phone numbers are bijections of the index below this

# fmt: off
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Christopher", "Karen", "Charles", "Lisa",
    "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Margaret", "Donald", "Ashley", "Steven",
    "Kimberly", "Andrew", "Emily", "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda",
    "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Dorothy", "Jason", "Rebecca", "Edward",
    "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Amy", "Gary", "Kathleen", "Nicholas", "Angela", "Eric",
    "Shirley", "Jonathan", "Brenda", "Stephen", "Emma", "Larry", "Anna", "Justin", "Pamela", "Scott", "Nicole",
    "Brandon", "Samantha", "Benjamin", "Katherine", "Samuel", "Christine", "Gregory", "Debra", "Alexander", "Rachel",
    "Patrick", "Carolyn", "Frank", "Janet", "Raymond", "Maria", "Jack", "Olivia", "Dennis", "Heather", "Jerry", "Helen",
    "Tyler", "Catherine", "Aaron", "Diane", "Jose", "Julie", "Adam", "Victoria", "Nathan", "Joyce", "Henry", "Lauren",
    "Zachary", "Kelly", "Douglas", "Christina", "Peter", "Ruth", "Kyle", "Joan", "Noah", "Virginia", "Ethan", "Judith",
    "Jeremy", "Evelyn", "Walter", "Hannah", "Christian", "Andrea", "Keith", "Megan", "Roger", "Cheryl", "Terry",
    "Jacqueline", "Austin", "Madison", "Sean", "Teresa", "Gerald", "Abigail", "Carl", "Sophia", "Harold", "Martha",
    "Dylan", "Sara", "Arthur", "Gloria", "Lawrence", "Janice", "Jordan", "Kathryn", "Jesse", "Ann", "Bryan", "Isabella",
    "Billy", "Judy", "Bruce", "Charlotte", "Gabriel", "Julia", "Joe", "Grace", "Logan", "Amber", "Alan", "Alice",
    "Juan", "Jean", "Albert", "Denise", "Willie", "Frances", "Elijah", "Danielle", "Wayne", "Marilyn", "Randy",
    "Natalie", "Vincent", "Beverly", "Mason", "Diana", "Roy", "Brittany",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez",
    "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez",
    "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen",
    "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker",
    "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez",
    "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward",
    "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes",
    "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell",
    "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes", "Gonzales", "Fisher",
    "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton", "Graham", "Reynolds", "Griffin",
    "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar",
    "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods",
    "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker", "Guzman", "Burns",
    "Crawford", "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason", "Dixon",
    "Munoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd", "Rose", "Stone", "Salazar",
    "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt", "Garza", "Daniels", "Ferguson", "Nichols", "Stephens", "Soto",
    "Weaver", "Ryan", "Gardner", "Payne", "Grant", "Dunn", "Kelley", "Spencer",
)
FEMALE = frozenset(FIRST_NAMES[1::2])
MIDDLE_INITIALS = "ABCDEFGHJKLMNPRSTW"
STREETS = (
    "Main St", "Elm St", "Oak Ave", "Pine St", "Maple Ave", "Cedar Ln", "Washington Blvd", "Lake Dr", "Hill Rd",
    "Sunset Blvd", "Park Ave", "2nd St", "Broadway", "Mission St", "Valencia St", "Grand Ave", "Telegraph Ave",
    "Colfax Ave", "Woodward Ave", "Michigan Ave", "Burnside St", "Alameda St", "Spring St", "Market St",
)
CITIES = (
    ("Oakland", "CA", "946"), ("Los Angeles", "CA", "900"), ("San Diego", "CA", "921"), ("Sacramento", "CA", "958"),
    ("Denver", "CO", "802"), ("Boulder", "CO", "803"), ("Detroit", "MI", "482"), ("Ann Arbor", "MI", "481"),
    ("Portland", "OR", "972"), ("Eugene", "OR", "974"), ("Seattle", "WA", "981"), ("Phoenix", "AZ", "850"),
    ("Las Vegas", "NV", "891"), ("Boston", "MA", "021"), ("Chicago", "IL", "606"), ("Albuquerque", "NM", "871"),
)
# fmt: on
AREA_CODES = ("510", "213", "619", "916", "303", "720", "313", "734", "503", "541", "206", "602", "702", "617", "312")
DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com", "proton.me", "example.com")
NOTES = (
    "",
    "",
    "",
    "",
    "",
    "",
    "Prefers text messages",
    "Veteran discount",
    "Ask about loyalty signup",
    "Caregiver on file",
    "Allergic to latex gloves",
    "Industry discount",
    "Returned product 2023",
)

# Affine bijections on [0, 10**k): a * i + b with a coprime to 10, so ids, phones, licences and cards
# can be turned back into the index for O(1) lookups.
_MOD7 = 10**7
_MOD8 = 10**8
_PHONE_A, _LICENCE_A, _CARD_A = 7_654_321, 3_141_593, 27_182_817
_NAME_A = 7919  # coprime with len(FIRST_NAMES) * len(LAST_NAMES)
_N_FIRST, _N_AREA, _N_STREETS, _N_NOTES = len(FIRST_NAMES), len(AREA_CODES), len(STREETS), len(NOTES)
_MASK40 = (1 << 40) - 1
_BIRTHDAY_FIRST_DAY, _BIRTHDAY_DAYS = -10957, 23725  # 1940-01-01 and 65 years of days (coprime with 7919)
_FOUR_YEARS_MS = 4 * 365 * 86_400_000


@dataclass(slots=True)
class Person:
    """One customer, vendor-neutral; each vendor module renders it in its own JSON."""

    index: int
    h: int  # 256 hash bits of (seed, vendor, index): stable per record, used for ids and fault choices
    first: str
    middle: str | None
    last: str
    email: str | None
    phone: str | None
    birthday: str | None  # YYYY-MM-DD, "1900-01-01" for the placeholder some POSes keep
    gender: str  # M | F | U
    licence: str | None
    licence_state: str | None
    licence_exp: str | None
    card: str | None
    card_exp: str | None
    medical: bool
    status: str  # active | inactive | merged
    merged_into: int | None  # index of the surviving customer
    street: str
    city: str
    state: str
    postal_code: str
    loyalty: int
    notes: str
    created_ms: int
    modified_ms: int
    version: int = 1
    last_visit_ms: int | None = None


def _hash(key: bytes) -> int:
    return int.from_bytes(blake2b(key, digest_size=32).digest(), "little")


def digits_of(value: str | None) -> str:
    """The digits of a phone number, without a leading US country code."""
    if not value:
        return ""
    # Rendering calls this for every Treez and Blaze record: dropping the usual separators is 5x faster
    # than testing each character, which is left for the rest.
    d = value.replace(" ", "").replace("-", "").replace("(", "").replace(")", "").replace(".", "").replace("+", "")
    if not d.isdigit():
        d = "".join(c for c in d if c.isdigit())
    return d[1:] if len(d) == 11 and d.startswith("1") else d


def format_phone(digits: str, style: int) -> str:
    """One of the assorted ways POS users type a US phone number."""
    style &= 7
    if style == 2 or style == 7:
        return digits
    a, b, c = digits[:3], digits[3:6], digits[6:]
    if style == 0:
        return f"({a}) {b}-{c}"
    if style == 1:
        return f"{a}-{b}-{c}"
    if style == 3:
        return f"+1 {a} {b} {c}"
    if style == 4:
        return f"1{digits}"
    if style == 5:
        return f"{a}.{b}.{c}"
    return f"({a}){b}-{c}"


class Generator:
    """Builds record `index` of one vendor's base dataset from the seed alone."""

    def __init__(self, seed: int, vendor: str, size: int) -> None:
        self.seed = seed
        self.vendor = vendor
        self.size = size
        self._prefix = f"{seed}:{vendor}:".encode()
        mix = _hash(self._prefix + b"mix")
        self.id_mask = mix & 0xFFFFFFFFFF  # 40 bits, hides the raw index inside ids
        self._phone_b = (mix >> 40) % _MOD7
        self._licence_b = (mix >> 64) % _MOD7
        self._card_b = (mix >> 88) % _MOD8
        self._names = len(FIRST_NAMES) * len(LAST_NAMES)
        self._name_b = (mix >> 100) % self._names
        self._phone_inv = pow(_PHONE_A, -1, _MOD7)
        self._licence_inv = pow(_LICENCE_A, -1, _MOD7)
        self._card_inv = pow(_CARD_A, -1, _MOD8)
        self._name_inv = pow(_NAME_A, -1, self._names)
        self._size1 = max(size, 1)
        self._birthday_b = (mix >> 120) % _BIRTHDAY_DAYS
        self._birthday_inv = pow(_NAME_A, -1, _BIRTHDAY_DAYS)

    def hash_of(self, index: int) -> int:
        """The record's 128 stable hash bits."""
        return _hash(self._prefix + str(index).encode())

    def modified_ms(self, index: int, h: int | None = None) -> int:
        """Base modification time: non-decreasing in the index, spread over EPOCH_START..EPOCH_END."""
        if h is None:
            h = self.hash_of(index)
        return EPOCH_START_MS + (index * SPAN_MS + (h & _MASK40) % SPAN_MS) // self._size1

    # --- lookups: person() writes phones, licences, cards, names and birthdays as affine bijections of the
    # index (inlined there); these invert them.
    def index_from_phone(self, seven: int) -> int:
        return (seven - self._phone_b) * self._phone_inv % _MOD7

    def index_from_licence(self, digits: int) -> int:
        return (digits - self._licence_b) * self._licence_inv % _MOD7

    def index_from_card(self, digits: int) -> int:
        return (digits - self._card_b) * self._card_inv % _MOD8

    def indexes_from_birthday(self, day: str, limit: int) -> Iterator[int]:
        """Candidate indexes whose generated birthday is this YYYY-MM-DD."""
        try:
            offset = (date.fromisoformat(day[:10]) - date(1970, 1, 1)).days - _BIRTHDAY_FIRST_DAY
        except ValueError:
            return
        if 0 <= offset < _BIRTHDAY_DAYS:
            start = (offset - self._birthday_b) * self._birthday_inv % _BIRTHDAY_DAYS
            yield from range(start, limit, _BIRTHDAY_DAYS)

    def indexes_from_name(self, first: str, last: str, limit: int) -> Iterator[int]:
        """Candidate indexes whose generated name is first/last (case-insensitive)."""
        try:
            fi = [n.lower() for n in FIRST_NAMES].index(first.lower())
            li = [n.lower() for n in LAST_NAMES].index(last.lower())
        except ValueError:
            return
        combo = li * len(FIRST_NAMES) + fi
        start = (combo - self._name_b) * self._name_inv % self._names
        yield from range(start, limit, self._names)

    # --- the record ---------------------------------------------------------------------------------
    def person(self, index: int) -> Person:
        """Record `index`, deterministic in (seed, vendor, index)."""
        # Inlined helpers below: this runs once per customer served and is the sandbox's hot path.
        h = int.from_bytes(blake2b(self._prefix + str(index).encode(), digest_size=32).digest(), "little")
        combo = (index * _NAME_A + self._name_b) % self._names
        first = FIRST_NAMES[combo % _N_FIRST]
        last = LAST_NAMES[combo // _N_FIRST]
        modified = EPOCH_START_MS + (index * SPAN_MS + (h & _MASK40) % SPAN_MS) // self._size1
        # Each field takes its own bits of the 256-bit hash, in order.
        b = h >> 40
        pick = b & 0xFFFF
        created = modified - (b >> 16 & 0xFFFFFFFFFF) % _FOUR_YEARS_MS
        if created < EARLIEST_CREATED_MS:
            created = EARLIEST_CREATED_MS
        b >>= 56
        city, state, zip3 = CITIES[b & 0xF]
        style = b >> 4 & 0xFF
        b >>= 12

        r = pick % 100
        if r < 7:
            email = None
        else:
            local = f"{first}.{last}{index}" if style & 1 else f"{first[0]}{last}{index}"
            domain = DOMAINS[(style >> 1) & 7]
            if r < 10:  # malformed, as typed at a busy register
                email = (f"{local}@{domain.split('.')[0]}", f"{local}.{domain}", f"{first} {last}{index}@{domain}")[
                    r - 7
                ].lower()
            elif r < 13:
                email = f"{local}@{domain}".upper()
            else:
                email = f"{local}@{domain}".lower()
        if (pick >> 7) % 100 < 6:
            phone = None
        else:
            seven = (index * _PHONE_A + self._phone_b) % _MOD7
            phone = format_phone(f"{AREA_CODES[style % _N_AREA]}{seven:07d}", style)
        r = (b & 0x7F) * 100 >> 7
        if r < 1:
            birthday = None
        elif r < 3:
            birthday = "1900-01-01"
        else:
            # 1940 .. 2004, a bijection of the index (mod the span) so birthday lookups stay O(1)
            day = _BIRTHDAY_FIRST_DAY + (index * _NAME_A + self._birthday_b) % _BIRTHDAY_DAYS
            birthday = _days.get(day) or _day(day)
        b >>= 23
        if ((b & 0x7F) * 100 >> 7) < 12:
            licence = licence_exp = None
        else:
            licence = f"{'DFGKMNSY'[b >> 7 & 7]}{(index * _LICENCE_A + self._licence_b) % _MOD7:07d}"
            day = 19723 + (b >> 10 & 0xFFF) % 2555  # 2024 .. 2030
            licence_exp = _days.get(day) or _day(day)
        b >>= 22
        medical = ((b & 0x7F) * 100 >> 7) < 25
        card: str | None
        card_exp: str | None
        if medical:
            card = f"MED{(index * _CARD_A + self._card_b) % _MOD8:08d}"
            day = 19358 + (b >> 7 & 0x7FF) % 1825  # 2023 .. 2027, some expired
            card_exp = _days.get(day) or _day(day)
        else:
            card = card_exp = None
        b >>= 18
        r = (b & 0x7F) * 100 >> 7
        merged_into = None
        if r < 4:
            status = "inactive"
        elif r < 7 and index > 0:
            status, merged_into = "merged", (b >> 7 & 0xFFFFF) % index
        else:
            status = "active"
        b >>= 27
        gender = "U" if b & 0xF == 0 else "F" if first in FEMALE else "M"
        middle = MIDDLE_INITIALS[(b >> 4 & 0xF) % 18] if b & 0x300 else None
        b >>= 10
        street = f"{1 + (b & 0x3FFF) % 9899} {STREETS[(b >> 14 & 0x1F) % _N_STREETS]}"
        b >>= 19
        last_visit = modified - (b >> 2 & 0xFFFFFF) * 10 if b & 0x3 else None
        return Person(
            index,
            h,
            first,
            middle,
            last,
            email,
            phone,
            birthday,
            gender,
            licence,
            state if licence else None,
            licence_exp,
            card,
            card_exp,
            medical,
            status,
            merged_into,
            street,
            city,
            state,
            f"{zip3}{(h >> 8) % 100:02d}",
            (h >> 16) % 2000 if h & 0x10000000 else 0,
            NOTES[(h >> 24) % _N_NOTES],
            created,
            modified,
            1,
            last_visit,
        )

    def malformed_fraction(self, h: int) -> float:
        """A stable number in [0, 1) per record: record is served malformed when it is below the fault rate."""
        return ((h >> 64) & 0xFFFFFFF) / 0x10000000


_EMAIL_INDEX = re.compile(r"(\d+)")


@dataclass
class VendorState:
    """One vendor's base generator plus the overlay of changes made while the sandbox runs."""

    gen: Generator
    size: int  # base records plus those created since start (created ones get indexes size, size+1, ...)
    overlay: dict[int, Person | None]  # None = deleted
    overlay_keys: list[int]  # sorted keys of overlay
    version: int = 0
    last_change_ms: int = 0


class Dataset:
    """These vendors' customers for one seed; thread-safe; memory grows only with changes."""

    def __init__(self, *, customers: int, seed: int, vendors: Iterable[str]) -> None:
        if not 0 <= customers <= MAX_CUSTOMERS:
            raise ValueError(f"customers must be between 0 and {MAX_CUSTOMERS:,}")
        self.customers = customers
        self.seed = seed
        self._lock = threading.RLock()
        self._rng = random.Random(f"{seed}:control")
        self._vendors = {v: VendorState(Generator(seed, v, customers), customers, {}, []) for v in vendors}
        self._slice_cache: dict[tuple[Any, ...], list[int]] = {}
        self._plans: dict[tuple[Any, ...], _NewestFirst] = {}

    @property
    def vendors(self) -> tuple[str, ...]:
        return tuple(self._vendors)

    def _state(self, vendor: str) -> VendorState:
        try:
            return self._vendors[vendor]
        except KeyError:
            raise ValueError(f"unknown vendor {vendor!r}; expected one of {', '.join(self._vendors)}") from None

    def generator(self, vendor: str) -> Generator:
        return self._state(vendor).gen

    # --- reading ---------------------------------------------------------------------------------------
    def person(self, vendor: str, index: int) -> Person | None:
        """The current record at `index`, or None when it does not exist or was deleted."""
        st = self._state(vendor)
        if not 0 <= index < st.size:
            return None
        if index in st.overlay:
            return st.overlay[index]
        return st.gen.person(index)

    def people(self, vendor: str, indexes: list[int]) -> list[Person]:
        """The current records at these indexes, in that order."""
        st = self._state(vendor)
        overlay, gen = st.overlay, st.gen
        out = [overlay[i] if i in overlay else gen.person(i) for i in indexes]
        return [p for p in out if p is not None]  # one deleted since the page was selected drops out

    def count(self, vendor: str) -> int:
        """How many customers the vendor has now."""
        st = self._state(vendor)
        with self._lock:
            deleted = sum(1 for p in st.overlay.values() if p is None)
            return st.size - deleted

    def iter_people(self, vendor: str) -> Iterator[Person]:
        """Every current record in index order (a snapshot is not taken: meant for tests and checks)."""
        st = self._state(vendor)
        for i in range(st.size):
            p = self.person(vendor, i)
            if p is not None:
                yield p

    def select(
        self, vendor: str, since_ms: int | None, until_ms: int | None, offset: int, limit: int
    ) -> tuple[list[int], int]:
        """Indexes of records with since <= modified < until, in index order: page [offset, offset+limit), total."""
        st = self._state(vendor)
        gen = st.gen
        with self._lock:
            size, version = st.size, st.version
            key = (vendor, since_ms, until_ms, version)
            extra = self._slice_cache.get(key)
            if extra is None:
                # Overlay records inside the window, sorted by index: cached per (window, overlay version).
                extra = [
                    i
                    for i in st.overlay_keys
                    if (p := st.overlay[i]) is not None
                    and (since_ms is None or p.modified_ms >= since_ms)
                    and (until_ms is None or p.modified_ms < until_ms)
                ]
                if len(self._slice_cache) > 256:
                    self._slice_cache.clear()
                self._slice_cache[key] = extra
            tkey = (vendor, "keys", version)
            touched = self._slice_cache.get(tkey)
            if touched is None:  # a snapshot, so writers never change the list under a reader
                touched = self._slice_cache[tkey] = list(st.overlay_keys)
        lo = 0 if since_ms is None else _bisect_time(gen, since_ms)
        hi = gen.size if until_ms is None else _bisect_time(gen, until_ms)
        hi = max(lo, hi)
        # The base part is [lo, hi) minus every overlaid index; the extras are listed explicitly.
        removed_lo = bisect_left(touched, lo)
        base_count = (hi - lo) - (bisect_left(touched, hi) - removed_lo)
        total = base_count + len(extra)
        if offset >= total or limit <= 0:
            return [], total

        def count_upto(x: int) -> int:  # elements <= x in the merged order
            c = min(max(x + 1, lo), hi)
            return (c - lo) - (bisect_left(touched, c) - removed_lo) + bisect_right(extra, x)

        a, b = 0, size
        while a < b:  # the smallest index with `offset + 1` elements at or below it
            mid = (a + b) // 2
            if count_upto(mid) > offset:
                b = mid
            else:
                a = mid + 1
        out: list[int] = []
        base = max(a, lo)
        ti = bisect_left(touched, base)
        ei = bisect_left(extra, a)
        while len(out) < limit:
            while base < hi and ti < len(touched) and touched[ti] <= base:
                if touched[ti] == base:
                    base += 1
                ti += 1
            nb = base if base < hi else None
            ne = extra[ei] if ei < len(extra) else None
            if nb is None and ne is None:
                break
            if ne is None or (nb is not None and nb < ne):
                out.append(base)
                base += 1
            else:
                out.append(ne)
                ei += 1
        return out, total

    def select_newest_first(
        self, vendor: str, since_ms: int | None, until_ms: int | None, offset: int, limit: int
    ) -> tuple[list[int], int]:
        """Like `select`, most recently modified first (descending modification time, then index).

        Base records are already in modification order, so they come in reverse index order; records changed
        since start are placed among them by their modification time. A change moves a record to the front.
        """
        st = self._state(vendor)
        with self._lock:
            key = (vendor, since_ms, until_ms, st.version)
            plan = self._plans.get(key)
            if plan is None:
                if len(self._plans) > 64:
                    self._plans.clear()
                plan = self._plans[key] = _newest_first(st, since_ms, until_ms)
        lo, hi, touched, extras, positions = plan
        t_lo = bisect_left(touched, lo)
        base_count = (hi - lo) - (bisect_left(touched, hi) - t_lo)
        total = base_count + len(extras)
        if offset >= total or limit <= 0:
            return [], total
        j = bisect_left(positions, offset)  # changed records placed before this page
        rank = offset - j  # of the first base record on the page, counted from the newest
        index = -1
        if rank < base_count:  # the base record of that rank: the (base_count - rank)-th from the oldest
            want, a, b = base_count - rank, lo, hi - 1
            while a < b:
                mid = (a + b) // 2
                if (mid - lo + 1) - (bisect_right(touched, mid) - t_lo) >= want:
                    b = mid
                else:
                    a = mid + 1
            index = a
        ti = bisect_right(touched, index) - 1
        out: list[int] = []
        position = offset
        while len(out) < limit and position < total:
            if j < len(extras) and positions[j] == position:
                out.append(extras[j])
                j += 1
            else:
                while ti >= 0 and touched[ti] >= index:  # step down past changed records
                    if touched[ti] == index:
                        index -= 1
                    ti -= 1
                out.append(index)
                index -= 1
            position += 1
        return out, total

    def select_created(
        self,
        vendor: str,
        since_ms: int | None,
        until_ms: int | None,
        created_since: int | None,
        created_until: int | None,
        offset: int,
        limit: int,
    ) -> tuple[list[int], int]:
        """Like `select`, also with created_since <= created < created_until.

        Creation times are not in index order, so this reads every candidate once per window and overlay
        version (a record is created before it is modified, so only those modified since `created_since`).
        """
        st = self._state(vendor)
        with self._lock:
            key = (vendor, "created", since_ms, until_ms, created_since, created_until, st.version)
            kept = self._slice_cache.get(key)
        if kept is None:
            low = since_ms
            if created_since is not None and (low is None or low < created_since):
                low = created_since
            total = self.select(vendor, low, until_ms, 0, 0)[1]
            kept = []
            for start in range(0, total, 10_000):
                page, _ = self.select(vendor, low, until_ms, start, 10_000)
                kept += [
                    p.index
                    for p in self.people(vendor, page)
                    if (created_since is None or p.created_ms >= created_since)
                    and (created_until is None or p.created_ms < created_until)
                ]
            with self._lock:
                if len(self._slice_cache) > 256:
                    self._slice_cache.clear()
                self._slice_cache[key] = kept
        return kept[offset : offset + max(limit, 0)], len(kept)

    def search(self, vendor: str, **criteria: str) -> list[Person]:
        """Live records matching every given criterion: phone, email, licence, card, first/last name, birthday."""
        st = self._state(vendor)
        gen = st.gen
        criteria = {k: v for k, v in criteria.items() if v not in (None, "")}
        if not criteria:
            return []
        candidates: set[int] = set()
        phone = digits_of(criteria.get("phone"))
        email = (criteria.get("email") or "").strip().lower()
        licence = (criteria.get("licence") or "").strip().upper()
        card = (criteria.get("card") or "").strip().upper()
        first = (criteria.get("first_name") or "").strip()
        last = (criteria.get("last_name") or "").strip()
        if phone and len(phone) >= 7:
            candidates.add(gen.index_from_phone(int(phone[-7:])))
        elif email:
            m = _EMAIL_INDEX.search(email)
            if m:
                candidates.add(int(m.group(1)))
        elif licence:
            digits = "".join(c for c in licence if c.isdigit())
            if len(digits) == 7:
                candidates.add(gen.index_from_licence(int(digits)))
        elif card:
            digits = "".join(c for c in card if c.isdigit())
            if len(digits) == 8:
                candidates.add(gen.index_from_card(int(digits)))
        elif first and last:
            candidates.update(gen.indexes_from_name(first, last, min(st.size, gen.size)))
        elif "birthday" in criteria:
            candidates.update(gen.indexes_from_birthday(criteria["birthday"], min(st.size, gen.size)))
        with self._lock:
            candidates.update(st.overlay_keys)
        found = []
        for i in sorted(candidates):
            p = self.person(vendor, i)
            if p is not None and _matches(p, phone, email, licence, card, first, last, criteria.get("birthday")):
                found.append(p)
        return found

    # --- changing ---------------------------------------------------------------------------------------
    def _now_ms(self, st: VendorState) -> int:
        # Never backwards (a clock step must not hide a change from "modified since"), never ahead of the clock.
        now = max(int(time.time() * 1000), st.last_change_ms)
        st.last_change_ms = now
        return now

    def _put(self, st: VendorState, index: int, person: Person | None) -> None:
        if index not in st.overlay:
            insort(st.overlay_keys, index)
        st.overlay[index] = person
        st.version += 1

    def _pick_live(self, st: VendorState, count: int) -> list[int]:
        live = st.size - sum(1 for p in st.overlay.values() if p is None)
        count = min(count, live)
        chosen: set[int] = set()
        while len(chosen) < count:
            i = self._rng.randrange(st.size)
            if i not in chosen and st.overlay.get(i, True) is not None:
                chosen.add(i)
        return sorted(chosen)

    def modify(self, vendor: str, *, count: int = 0, indexes: list[int] | None = None) -> list[Person]:
        """Change `count` random live customers (or these indexes) now: loyalty, notes, sometimes email or phone."""
        st = self._state(vendor)
        with self._lock:
            targets = indexes if indexes is not None else self._pick_live(st, count)
            changed = []
            for i in targets:
                p = self.person(vendor, i)
                if p is None:
                    continue
                roll = self._rng.random()
                p = replace(
                    p,
                    loyalty=p.loyalty + self._rng.randint(1, 50),
                    notes=f"Updated at the register ({self._rng.choice(NOTES[6:])})",
                    email=f"{p.first}.{p.last}{i}@newmail.example".lower() if roll < 0.3 else p.email,
                    phone=(
                        format_phone(digits_of(p.phone), self._rng.randrange(8)) if p.phone and roll > 0.7 else p.phone
                    ),
                    modified_ms=self._now_ms(st),
                    version=p.version + 1,
                )
                self._put(st, i, p)
                changed.append(p)
            return changed

    def update(self, vendor: str, index: int, **changes: Any) -> Person:
        """Set fields on one live customer now (for tests that need a precise change)."""
        st = self._state(vendor)
        with self._lock:
            p = self.person(vendor, index)
            if p is None:
                raise KeyError(index)
            p = replace(p, **changes, modified_ms=self._now_ms(st), version=p.version + 1)
            self._put(st, index, p)
            return p

    def create(self, vendor: str, *, count: int = 1) -> list[Person]:
        """Add `count` new generated customers, created and modified now."""
        st = self._state(vendor)
        with self._lock:
            made = []
            for _ in range(count):
                i = st.size
                now = self._now_ms(st)
                p = replace(st.gen.person(i), created_ms=now, modified_ms=now, status="active", merged_into=None)
                st.size += 1
                self._put(st, i, p)
                made.append(p)
            return made

    def add(self, vendor: str, fields: dict[str, Any]) -> Person:
        """Add one customer from a create request's fields (vendor-neutral names of Person)."""
        st = self._state(vendor)
        with self._lock:
            i = st.size
            now = self._now_ms(st)
            base = st.gen.person(i)
            p = replace(
                base,
                middle=None,
                gender="U",
                street="",
                city="",
                state="",
                postal_code="",
                email=None,
                phone=None,
                birthday=None,
                licence=None,
                licence_state=None,
                licence_exp=None,
                card=None,
                card_exp=None,
                medical=False,
                status="active",
                merged_into=None,
                loyalty=0,
                notes="",
                last_visit_ms=None,
                created_ms=now,
                modified_ms=now,
            )
            p = replace(p, **fields)
            st.size += 1
            self._put(st, i, p)
            return p

    def delete(self, vendor: str, *, count: int = 0, indexes: list[int] | None = None) -> list[Person]:
        """Remove `count` random live customers (or these indexes); returns the records removed."""
        st = self._state(vendor)
        with self._lock:
            targets = indexes if indexes is not None else self._pick_live(st, count)
            gone = []
            for i in targets:
                p = self.person(vendor, i)
                if p is not None:
                    self._put(st, i, None)
                    gone.append(p)
            return gone

    def reset(self) -> None:
        """Forget every change made since start."""
        with self._lock:
            for st in self._vendors.values():
                st.overlay.clear()
                st.overlay_keys.clear()
                st.size = st.gen.size
                st.version += 1
            self._rng = random.Random(f"{self.seed}:control")

    def changes(self, vendor: str) -> dict[str, int]:
        """Counts of records modified, created and deleted since start."""
        st = self._state(vendor)
        with self._lock:
            created = st.size - st.gen.size
            deleted = sum(1 for p in st.overlay.values() if p is None)
            modified = sum(1 for i, p in st.overlay.items() if p is not None and i < st.gen.size)
            return {"modified": modified, "created": created, "deleted": deleted}


class _NewestFirst(NamedTuple):
    """How `select_newest_first` merges the base records with those changed since start, for one window."""

    lo: int  # the base records in the window: indexes [lo, hi) but the changed ones
    hi: int
    touched: list[int]  # every changed index, sorted
    changed: list[int]  # the changed records in the window, newest first
    positions: list[int]  # where each of those stands in the merged order (0 = newest)


def _newest_first(st: VendorState, since_ms: int | None, until_ms: int | None) -> _NewestFirst:
    gen = st.gen
    lo = 0 if since_ms is None else _bisect_time(gen, since_ms)
    hi = max(lo, gen.size if until_ms is None else _bisect_time(gen, until_ms))
    touched = list(st.overlay_keys)
    changed = sorted(
        (
            (p.modified_ms, i)
            for i in touched
            if (p := st.overlay[i]) is not None
            and (since_ms is None or p.modified_ms >= since_ms)
            and (until_ms is None or p.modified_ms < until_ms)
        ),
        reverse=True,
    )
    positions = []
    for j, (modified, i) in enumerate(changed):
        # Base records newer than this one are the indexes from the first whose (modified, index) is greater.
        first = max(lo, min(max(_bisect_time(gen, modified), i + 1), _bisect_time(gen, modified + 1)))
        newer = (hi - first) - (bisect_left(touched, hi) - bisect_left(touched, first)) if first < hi else 0
        positions.append(j + newer)
    return _NewestFirst(lo, hi, touched, [i for _, i in changed], positions)


def _bisect_time(gen: Generator, t_ms: int) -> int:
    """The first base index whose generated modification time is >= t_ms."""
    # modified_ms(i) lies in [START + i*SPAN/N, START + (i+1)*SPAN/N), so inverting that line lands within
    # a step of the answer; walk the last step instead of bisecting (which would hash ~20 records).
    n = gen.size
    i = min(max((t_ms - EPOCH_START_MS) * n // SPAN_MS, 0), n)
    while i > 0 and gen.modified_ms(i - 1) >= t_ms:
        i -= 1
    while i < n and gen.modified_ms(i) < t_ms:
        i += 1
    return i


def _matches(
    p: Person,
    phone: str,
    email: str,
    licence: str,
    card: str,
    first: str,
    last: str,
    birthday: str | None,
) -> bool:
    if phone and digits_of(p.phone) != phone:
        return False
    if email and (p.email or "").lower() != email:
        return False
    if licence and (p.licence or "").upper() != licence:
        return False
    if card and (p.card or "").upper() != card:
        return False
    if first and p.first.lower() != first.lower():
        return False
    if last and p.last.lower() != last.lower():
        return False
    return not (birthday and p.birthday != birthday[:10])
