"""Time is UTC inside; these helpers write and read Render's RFC 3339 form."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_rfc3339(moment: datetime | None) -> str | None:
    """Render's shape: microseconds and an explicit offset."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


class OutOfRange(ValueError):
    """A well-formed timestamp that is not a time in UTC (before year 1 or after 9999 once its offset is applied)."""


def parse_rfc3339(text: str) -> datetime:
    """Parse an ISO 8601 / RFC 3339 timestamp; naive values are taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-23:59, 0001-01-01T00:00:00+01:00
        raise OutOfRange(f"{text!r} is outside years 1 to 9999 in UTC") from None


def parse_stored(text: str | None) -> datetime | None:
    return parse_rfc3339(text) if text else None


def to_local_text(moment: datetime | None) -> str:
    """For people: local time, to the second."""
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
