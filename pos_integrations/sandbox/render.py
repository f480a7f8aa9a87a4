"""Each vendor's JSON for a sandbox customer, written straight to text (json.dumps of dicts is 4x slower).

Field names, id formats and date formats follow shared/pos-apis.md. Every string that may hold user input
goes through `_q` (the C JSON string encoder), so created customers with any text still render valid JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from hashlib import blake2b
from json.encoder import encode_basestring_ascii as _q  # type: ignore[attr-defined]

from .data import Generator, Person, digits_of

# Treez and Flowhub speak in the store's local time; the sandbox's stores sit at a fixed UTC-7.
LOCAL_OFFSET_MS = -7 * 3_600_000
LOCAL_OFFSET_TEXT = "-07:00"
BLAZE_COMPANY_ID = "5f1e0b7c2a9d4e0012ab34cd"
BLAZE_SHOP_ID = "5f1e0b7c2a9d4e0012ab34ce"

_days: dict[int, str] = {}


def _day(days: int) -> str:
    s = _days.get(days)
    if s is None:
        s = _days[days] = (date(1970, 1, 1) + timedelta(days=days)).isoformat()
    return s


_clock: dict[int, str] = {}  # second of the day -> "HH:MM:SS"; at most 86,400 entries


def iso_seconds(ms: int) -> str:
    """YYYY-MM-DDTHH:MM:SS of an epoch-ms time (UTC unless shifted first)."""
    # Three of these per record: two cache lookups are 5x faster than formatting each time.
    d, r = divmod(ms // 1000, 86400)
    clock = _clock.get(r)
    if clock is None:
        hh, rest = divmod(r, 3600)
        clock = _clock[r] = f"{hh:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{_days.get(d) or _day(d)}T{clock}"


def date_ms(day: str) -> int:
    """Epoch ms of midnight UTC on a YYYY-MM-DD date (negative before 1970)."""
    return (date.fromisoformat(day) - date(1970, 1, 1)).days * 86_400_000


def _n(s: str | None) -> str:
    return "null" if s is None else _q(s)


def _b(v: bool) -> str:
    return "true" if v else "false"


# --- ids --------------------------------------------------------------------------------------------------
def vendor_id(vendor: str, gen: Generator, p: Person) -> str:
    """The record's id as the vendor writes it (a Python str; Dutchie's is the text of an int)."""
    i = p.index
    if vendor == "leaflogix":
        return str(100_001 + i)
    if vendor == "treez":
        return str(1_001 + i)
    h = p.h
    if vendor in ("flowhub", "covasoft"):
        tail = (i ^ gen.id_mask) & 0xFFFFFFFFFF
        return (
            f"{(h >> 96) & 0xFFFFFFFF:08x}-{(h >> 80) & 0xFFFF:04x}-4{(h >> 68) & 0xFFF:03x}-"
            f"{0x8000 | ((h >> 52) & 0x3FFF):04x}-{(h >> 40) & 0xFF:02x}{tail:010x}"
        )
    # Blaze: a Mongo ObjectId, whose first 4 bytes are the creation time.
    return f"{(p.created_ms // 1000) & 0xFFFFFFFF:08x}{(h >> 40) & 0xFFFFFF:06x}{(i ^ gen.id_mask) & 0xFFFFFFFFFF:010x}"


def index_of(vendor: str, gen: Generator, vendor_id_text: str) -> int | None:
    """The index a vendor id points at, or None when it cannot be one of ours (verify by re-rendering)."""
    text = vendor_id_text.strip().lower()
    try:
        if vendor == "leaflogix":
            i = int(text) - 100_001
        elif vendor == "treez":
            i = int(text) - 1_001
        elif vendor in ("flowhub", "covasoft"):
            if len(text) != 36:
                return None
            i = (int(text[-10:], 16) ^ gen.id_mask) & 0xFFFFFFFFFF
        else:
            if len(text) != 24:
                return None
            i = (int(text[-10:], 16) ^ gen.id_mask) & 0xFFFFFFFFFF
    except ValueError:
        return None
    return i if i >= 0 else None


# --- records ----------------------------------------------------------------------------------------------
# Each renderer takes (generator, person, malformed) and returns the record's JSON text. A malformed record
# keeps its id, so the sync can name it, but its modification time cannot be parsed by any reader.
BAD_TIME = '"not-a-date"'


def render_leaflogix(gen: Generator, p: Person, bad: bool) -> str:
    status = "Active" if p.status == "active" else "Inactive"
    merged = str(100_001 + p.merged_into) if p.merged_into is not None else "null"
    dl_hash = "null" if p.licence is None else f'"{blake2b(p.licence.encode(), digest_size=20).hexdigest()}"'
    gender = "Female" if p.gender == "F" else "Male" if p.gender == "M" else "Unspecified"
    visit = "null" if p.last_visit_ms is None else f'"{iso_seconds(p.last_visit_ms)}"'
    modified = BAD_TIME if bad else f'"{iso_seconds(p.modified_ms)}"'
    return (
        f'{{"customerId":{100_001 + p.index},"uniqueId":"{p.h & 0xFFFFFFFFFFFF:012x}","firstName":{_q(p.first)},'
        f'"middleName":{_n(p.middle)},"lastName":{_q(p.last)},"namePrefix":null,"nameSuffix":null,'
        f'"address1":{_q(p.street)},"address2":null,"city":{_q(p.city)},"state":{_q(p.state)},'
        f'"postalCode":{_q(p.postal_code)},"phone":{_n(p.phone)},"cellPhone":null,"emailAddress":{_n(p.email)},'
        f'"status":"{status}","mmjidNumber":{_n(p.card)},'
        f'"mmjidExpirationDate":{"null" if p.card_exp is None else chr(34) + p.card_exp + "T00:00:00" + chr(34)},'
        f'"customerType":"{"Medical" if p.medical else "Recreational"}","gender":"{gender}",'
        f'"dateOfBirth":{"null" if p.birthday is None else chr(34) + p.birthday + "T00:00:00" + chr(34)},'
        f'"notes":{_q(p.notes)},"customIdentifier":null,"isLoyaltyMember":{_b(p.loyalty > 0)},"isAnonymous":false,'
        f'"lastTransactionDate":{visit},"creationDate":"{iso_seconds(p.created_ms)}",'
        f'"lastModifiedDateUTC":{modified},"discountGroups":[],"referralSource":null,'
        f'"driversLicenseHash":{dl_hash},"externalCustomerId":null,"createdAtLocation":"Sandbox Dispensary",'
        f'"createdByIntegrator":false,"mergedIntoCustomerId":{merged}}}'
    )


def _treez_local(ms: int) -> str:
    return f"{iso_seconds(ms + LOCAL_OFFSET_MS)}.000{LOCAL_OFFSET_TEXT}"


def render_treez(gen: Generator, p: Person, bad: bool) -> str:
    status = {"active": "ACTIVE", "inactive": "INACTIVE", "merged": "MERGED"}[p.status]
    merged = f'"{1_001 + p.merged_into}"' if p.merged_into is not None else "null"
    phone = digits_of(p.phone) or None
    permit = "null" if p.card_exp is None else f'"{p.card_exp} 00:00:00.000"'
    visit = "null" if p.last_visit_ms is None else f'"{iso_seconds(p.last_visit_ms).replace("T", " ")}.000"'
    modified = BAD_TIME if bad else f'"{_treez_local(p.modified_ms)}"'
    return (
        f'{{"customer_id":"{1_001 + p.index}","status":"{status}","verification_status":"VERIFIED",'
        f'"verification_reasons":[],"first_name":{_q(p.first.upper())},"middle_name":{_n(p.middle)},'
        f'"last_name":{_q(p.last.upper())},"nickname":null,"birthday":{_n(p.birthday)},"email":{_n(p.email)},'
        f'"phone":{_n(phone)},"gender":"{p.gender}","notes":{_q(p.notes)},"banned":false,'
        f'"drivers_license":{_n(p.licence)},"drivers_license_expiration":{_n(p.licence_exp)},'
        f'"state_medical_id":{_n(p.card)},"permit_expiration":{permit},'
        f'"patient_type":"{"MEDICAL_MMID" if p.medical else "ADULT"}","is_caregiver":false,'
        f'"rewards_balance":{p.loyalty},"rewards_type":"POINTS","signup_date":"{_treez_local(p.created_ms)}",'
        f'"last_visit_date":{visit},"last_update":{modified},"opt_out":false,"referral_source":null,'
        f'"customer_groups":[],"merged_customer_ids":[],"merged_into_customer_id":{merged},"imageList":[],'
        f'"external_ids":{{}},"addresses":[{{"type":"address_of_record","street1":{_q(p.street.upper())},'
        f'"street2":null,"city":{_q(p.city.upper())},"state":{_q(p.state)},"zipcode":{_q(p.postal_code)},'
        f'"primary":true}}]}}'
    )


def _micro(ms: int) -> str:
    # Flowhub writes microseconds; ours are whole milliseconds so the text is exactly the stored time.
    return f"{iso_seconds(ms)}.{ms % 1000:03d}000Z"


def render_flowhub(gen: Generator, p: Person, bad: bool) -> str:
    modified = BAD_TIME if bad else f'"{_micro(p.modified_ms)}"'
    return (
        f'{{"id":"{vendor_id("flowhub", gen, p)}","createdAt":"{_micro(p.created_ms)}",'
        f'"updatedAt":{modified},"type":"{"medCustomer" if p.medical else "recCustomer"}",'
        f'"name":{_q(f"{p.first} {p.last}")},"state":{_q(p.state)},"birthDate":{_n(p.birthday)},'
        f'"isLoyal":{_b(p.loyalty > 0)},"loyaltyPoints":{p.loyalty},"phone":{_n(p.phone)},"email":{_n(p.email)},'
        f'"streetAddress1":{_q(p.street)},"streetAddress2":null,"city":{_q(p.city)},"zip":{_q(p.postal_code)},'
        f'"country":"US","consentsToPromotionalEmail":{_b(bool(p.h & 1))},'
        f'"consentsToPromotionalSMS":{_b(bool(p.h & 2))},"groups":[]}}'
    )


def _cova_time(ms: int) -> str:
    return f"{iso_seconds(ms)}.{ms % 1000:03d}Z"


def render_covasoft(gen: Generator, p: Person, bad: bool) -> str:
    merged = "null"
    if p.merged_into is not None:
        merged = f'"{vendor_id("covasoft", gen, gen.person(p.merged_into))}"'
    contacts = []
    if p.email is not None:
        contacts.append(
            f'{{"ContactMethodCategoryId":2,"ContactMethodTypeId":9,"Value":{_q(p.email)},"Default":true,'
            f'"DoNotContact":false}}'
        )
    if p.phone is not None:
        contacts.append(
            f'{{"ContactMethodCategoryId":1,"ContactMethodTypeId":3,"Value":{_q(p.phone)},'
            f'"Default":{_b(p.email is None)},"DoNotContact":false}}'
        )
    modified = BAD_TIME if bad else f'"{_cova_time(p.modified_ms)}"'
    return (
        f'{{"Id":"{vendor_id("covasoft", gen, p)}","CustomerTypeId":2,"CustomerType":"Person","Title":null,'
        f'"PrimaryName":{_q(p.first)},"AlternateName":null,"MiddleName":{_n(p.middle)},"FamilyName":{_q(p.last)},'
        f'"DateOfBirth":{"null" if p.birthday is None else chr(34) + p.birthday + "T00:00:00.000" + chr(34)},'
        f'"Disabled":{_b(p.status != "active")},"DoNotContact":{_b(not p.h & 4)},"Notes":{_q(p.notes)},'
        f'"ReferralSource":null,"UniqueIdentifier":null,"PricingGroupId":null,"Version":{p.version},'
        f'"MergedIntoCustomerId":{merged},"MergedCustomers":[],"Documents":[],"RelatedCustomers":[],"MemberOf":[],'
        f'"CustomerExtensions":[],"Addresses":[{{"AddressTypeId":2,"StreetAddress1":{_q(p.street)},'
        f'"StreetAddress2":null,"Locality":{_q(p.city)},"StateCode":{_q(p.state)},"CountryCode":"US",'
        f'"PostalCode":{_q(p.postal_code)},"Default":true,"DoNotContact":false}}],'
        f'"ContactMethods":[{",".join(contacts)}],"CreatedDateUtc":"{_cova_time(p.created_ms)}",'
        f'"LastModifiedDateUtc":{modified}}}'
    )


_BLAZE_SEX = {"M": ("0", '"MALE"'), "F": ("1", '"FEMALE"'), "U": ("2", '"OTHER"')}


def render_blaze(gen: Generator, p: Person, bad: bool) -> str:
    ident = ""
    if p.licence is not None:
        exp = "null" if p.licence_exp is None else str(date_ms(p.licence_exp))
        ident = (
            f'{{"licenseNumber":{_q(p.licence)},"expirationDate":{exp},"localExpirationDate":{_n(p.licence_exp)},'
            f'"state":{_n(p.licence_state)},"type":"Drivers"}}'
        )
    rec = ""
    if p.card is not None:
        exp = "null" if p.card_exp is None else str(date_ms(p.card_exp))
        rec = f'{{"recommendationNumber":{_q(p.card)},"expirationDate":{exp},"state":{_q(p.state)}}}'
    dob = "null" if p.birthday is None else str(date_ms(p.birthday))
    sex = _BLAZE_SEX[p.gender][(p.h >> 3) & 1]  # the live API sends integers, the swagger strings
    notes = f'[{{"message":{_q(p.notes)}}}]' if p.notes else "[]"
    visit = "null" if p.last_visit_ms is None else str(p.last_visit_ms)
    modified = BAD_TIME if bad else str(p.modified_ms)
    return (
        f'{{"id":"{vendor_id("blaze", gen, p)}","created":{p.created_ms},"modified":{modified},'
        f'"deleted":false,"companyId":"{BLAZE_COMPANY_ID}","shopId":"{BLAZE_SHOP_ID}",'
        f'"firstName":{_q(p.first)},"lastName":{_q(p.last)},"middleName":{_n(p.middle)},'
        f'"email":{_q(p.email or "")},"primaryPhone":{_q(p.phone or "")},"dob":{dob},"birthdate":{_n(p.birthday)},'
        f'"sex":{sex},"status":"{"Active" if p.status == "active" else "Inactive"}","medical":{_b(p.medical)},'
        f'"consumerType":"{"MedicinalState" if p.medical else "AdultUse"}",'
        f'"address":{{"address":{_q(p.street)},"city":{_q(p.city)},"state":{_q(p.state)},'
        f'"zipCode":{_q(p.postal_code)},"addressLine2":null,"country":"US"}},'
        f'"identifications":[{ident}],"recommendations":[{rec}],"loyaltyPoints":{p.loyalty}.0,'
        f'"lifetimePoints":{p.loyalty}.0,"enableLoyalty":true,"textOptIn":{_b(bool(p.h & 2))},'
        f'"emailOptIn":{_b(bool(p.h & 1))},"lastVisitDate":{visit},"startDate":{p.created_ms},'
        f'"memberGroup":{{"name":"Members"}},"banPatient":false,"notes":{notes},"tags":[]}}'
    )


RENDERERS: dict[str, Callable[[Generator, Person, bool], str]] = {
    "leaflogix": render_leaflogix,
    "treez": render_treez,
    "flowhub": render_flowhub,
    "covasoft": render_covasoft,
    "blaze": render_blaze,
}
