"""What every use case needs: the database, the NLU, the answer table and a few settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot.services.answers import AnswerTable
from bot.services.flood import FloodGuard
from bot.services.offers.campaign import FrequencyCap
from bot.services.offers.catalogue import DEFAULT_TEXTS, Catalogue, OfferTexts
from bot.services.schedule import Schedule
from bot.services.staff_directory import StaffDirectory
from db.group_commit import GroupCommit
from nlp import NLU


@dataclass
class Services:
    """Wired once (see :mod:`bot.wiring`) and shared by every channel."""

    session_factory: sessionmaker[Session]
    nlu: NLU
    answers: AnswerTable
    shop_name: str = "shop"
    staff_ids: frozenset[int] = field(default_factory=frozenset)
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    staff_chat_id: int | None = None
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    schedules: dict[str, Schedule] = field(default_factory=dict)
    retention_months: int = 24
    backup_dir: Path | None = None
    backup_keep: int = 7
    database_url: str = ""
    question_ttl: timedelta = timedelta(minutes=30)
    csat_reminder_after: timedelta = timedelta(hours=2)
    nps_interval: timedelta = timedelta(days=90)
    offer_catalogue: Catalogue | None = None
    offer_cap: FrequencyCap = field(default_factory=FrequencyCap)
    directory: StaffDirectory | None = None
    flood_messages: int = 12
    flood_window: timedelta = timedelta(seconds=30)
    flood_guard: FloodGuard = field(init=False)
    # Bookkeeping writes of concurrent updates (raw updates, outbox marks), committed together.
    writes: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.flood_guard = FloodGuard(self.flood_messages, self.flood_window)
        self.writes = GroupCommit(self.session_factory)

    @property
    def offer_texts(self) -> OfferTexts:
        """What the bot says around offers (the catalogue's ``messages``)."""
        return self.offer_catalogue.texts if self.offer_catalogue else DEFAULT_TEXTS

    def _added(self) -> tuple[frozenset[int], frozenset[int]]:
        if self.directory is None:
            return frozenset(), frozenset()
        return self.directory.added()

    def is_staff(self, user_id: int) -> bool:
        """Staff (agents and admins): configured, or added by an admin in the chat."""
        if user_id in self.staff_ids or user_id in self.admin_ids:
            return True
        return user_id in self._added()[0]

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admin_ids or user_id in self._added()[1]

    def all_staff(self) -> list[int]:
        return sorted(self.staff_ids | self.admin_ids | self._added()[0])

    def staff_destinations(self) -> list[int]:
        """Where staff notifications go: the staff chat, else each staff member privately."""
        if self.staff_chat_id is not None:
            return [self.staff_chat_id]
        return self.all_staff()
