"""When each line of the demo reaches the store: its delivery, and so its knowledge time.

A real team does not learn of an event when it happens. The survey platform
exports weekly, paper forms are keyed a month later, the last boxes of paper
forms are keyed after the analysis has started, CDRP audits are logged when
the month closes, a data-entry slip is retracted weeks after it was made. So
the demo ingests its lines in deliveries, each with its own ``recorded_at``
(the same path as `planning ingest --recorded-at`), and a build ``--as-of`` an
earlier instant shows what the Panel knew then.

The schedule of each feed (all times UTC; a delivery's time is never before
the events it carries):

* online survey: a weekly export, on the Monday after the response, 06:00;
* every other consultation channel (paper forms, notes of meetings): keyed
  on the 10th of the next month, 11:00, except the last month of fieldwork
  (August), whose paper returns are keyed late, on 12 October, 11:00;
* the Public Attitude Survey: the contractor's monthly file, the 7th, 08:00;
* CDRP audits: logged on the 3rd of the next month, 10:00 (so August's
  arrive after the analysis stage opened);
* group returns (meetings held): the 5th of the next month, 12:00;
* the census import: the day it was made, 17:00;
* the secretariat's records (the timetable, sign-offs, feedback, priorities,
  the plan): the next working day, 09:30;
* retractions by the data team: the 20th of the next month, 10:00, and never
  before the event they retract has arrived;
* erasure requests: carried out on the last day of the month, 17:00 (after
  every consultation delivery of the cycle, so no response of an erased
  respondent arrives after the erasure).

A re-sent duplicate comes in the feed's next delivery (or the same one when
none came within five weeks); a bad line comes with the event it was copied
from (so it breaks only its own rule, not "occurred in the future" too), and
waits with it. A delivery due after
``known_by`` (the demo's today, never after the real clock) has not arrived:
its lines are left out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from events.contract.forms import FIRST_YEAR
from pipelines.demo.generator import DemoLine

FIELDWORK_LAST_MONTH = 8  # August: its paper returns are keyed late
LATE_PAPER_KEYED_ON = (10, 12)  # (month, day) the late paper returns are keyed
RESEND_WITHIN = timedelta(days=35)  # a sender re-sends a line in its next file, not next year's
EARLIEST_KNOWLEDGE = datetime(FIRST_YEAR, 1, 1, tzinfo=timezone.utc)  # the contract's first year

SECRETARIAT_TYPES = frozenset({
    "cycle.opened", "programme.approved", "stage.signed_off", "feedback.published", "priorities.adopted",
    "plan.published",
})


@dataclass
class Delivery:
    """One delivery file of one feed, recorded at one instant."""

    feed: str
    recorded_at: datetime
    lines: list[DemoLine] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The delivery's file name, e.g. "online-survey-2026-06-08T0600.jsonl": one per feed and instant."""
        return f"{self.feed}-{self.recorded_at:%Y-%m-%dT%H%M}.jsonl"


def known_by(today: date, now: datetime) -> datetime:
    """The last instant the demo's deliveries may be recorded at: the end of ``today``, but never after ``now``
    (the contract refuses a knowledge time in the future; a ``--today`` ahead of the clock knows what has arrived)."""
    return min(now, datetime.combine(today, time.max, tzinfo=timezone.utc))


def deliveries(lines: list[DemoLine], cutoff: datetime) -> list[Delivery]:
    """The deliveries that have arrived by ``cutoff``, in knowledge order, holding every line they carry."""
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")
    scheduled: dict[tuple[datetime, str], Delivery] = {}
    arrival: dict[str, tuple[datetime, str]] = {}  # event_id -> its delivery's key

    def deliver(key: tuple[datetime, str], line: DemoLine) -> None:
        if key not in scheduled:
            scheduled[key] = Delivery(key[1], key[0])
        scheduled[key].lines.append(line)

    good = [line for line in lines if line.kind == "event" and line.event is not None]
    for line in good:  # retractions last: each waits for the event it retracts
        if line.event["event_type"] != "event.retracted":
            key = delivery_of(line.event)
            arrival[line.event["event_id"]] = key
            deliver(key, line)
    for line in good:
        if line.event["event_type"] == "event.retracted":
            at, feed = delivery_of(line.event)
            target = arrival.get(line.event["payload"]["target_event_id"])
            if target is not None and target[0] >= at:
                at = datetime.combine(target[0].date() + timedelta(days=1), time(10), tzinfo=timezone.utc)
            arrival[line.event["event_id"]] = (at, feed)
            deliver((at, feed), line)

    arrived = {key: d for key, d in scheduled.items() if key[0] <= cutoff}
    by_feed: dict[str, list[datetime]] = defaultdict(list)
    for at, feed in sorted(arrived):
        by_feed[feed].append(at)
    for line in lines:
        key = arrival.get(line.event["event_id"]) if line.event is not None else None
        if key not in arrived or line.kind == "event":
            continue
        if line.kind == "duplicate":  # re-sent in the feed's next delivery, if it came within a few weeks
            times = by_feed[key[1]]
            after = times.index(key[0]) + 1
            if after < len(times) and times[after] - key[0] <= RESEND_WITHIN:
                key = (times[after], key[1])
        arrived[key].lines.append(line)
    return [arrived[key] for key in sorted(arrived)]


def delivery_of(event: dict[str, Any]) -> tuple[datetime, str]:
    """(recorded_at, feed) of the delivery that carries ``event``, by its feed's schedule."""
    occurred = _instant(event["occurred_at"])
    day, event_type = occurred.date(), event["event_type"]
    if event_type == "consultation.response_received":
        if event["payload"].get("channel") == "online_survey":
            at, feed = _at(day + timedelta(days=7 - day.weekday()), 6), "online-survey"
        elif day.month == FIELDWORK_LAST_MONTH:
            month, dom = LATE_PAPER_KEYED_ON
            at, feed = _at(date(day.year, month, dom), 11), "late-paper-returns"
        else:
            at, feed = _at(_next_month(day, 10), 11), "paper-returns"
    elif event_type == "survey.response_recorded":
        at, feed = _at(_next_month(day, 7), 8), "pas"
    elif event_type == "cdrp.audit_submitted":
        at, feed = _at(_next_month(day, 3), 10), "cdrp-audit-returns"
    elif event_type == "group.meeting_held":
        at, feed = _at(_next_month(day, 5), 12), "group-returns"
    elif event_type == "borough.profile_recorded":
        at, feed = _at(day, 17), "census-import"
    elif event_type == "event.retracted":
        at, feed = _at(_next_month(day, 20), 10), "data-team-corrections"
    elif event_type == "respondent.erasure_requested":
        at, feed = _at(_next_month(day, 1) - timedelta(days=1), 17), "information-rights"
    else:  # the secretariat's records, and any other
        at, feed = _at(_next_working_day(day), 9, 30), "secretariat" if event_type in SECRETARIAT_TYPES else "other"
    return max(at, occurred + timedelta(hours=1), EARLIEST_KNOWLEDGE), feed


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.utc)


def _next_month(day: date, day_of_month: int) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, day_of_month)


def _next_working_day(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day
