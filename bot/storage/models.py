"""SQLAlchemy models: users, chats, per-chat state, jobs, images and where images were shown."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: A row id (and a column naming one): 64-bit everywhere; on SQLite spelled INTEGER, the only
#: type that makes a primary key the rowid (and takes AUTOINCREMENT).
RowId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; SQLite keeps no zone, so values read back get UTC attached."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    TEXT_ONLY = "text_only"
    FAILED = "failed"


class JobKind(StrEnum):
    GENERATE = "generate"
    EDIT = "edit"
    COMPOSE = "compose"


class ImageSource(StrEnum):
    USER = "user"
    BOT = "bot"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_name: Mapped[str] = mapped_column(String(256), default="")
    username: Mapped[str | None] = mapped_column(String(64))
    language_code: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Chat(Base):
    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChatPrefs(Base):
    """Per-chat choices made with /settings and /ratio (NULL = the bot's default)."""

    __tablename__ = "chat_prefs"

    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"), primary_key=True)
    refine: Mapped[bool] = mapped_column(Boolean, default=True)
    aspect_ratio: Mapped[str | None] = mapped_column(String(8))
    image_size: Mapped[str | None] = mapped_column(String(4))
    reply_mode: Mapped[str] = mapped_column(String(8), default="photo")
    model: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(8))
    search: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ChatState(Base):
    """Conversation state of one chat (or one forum topic: thread_id 0 is the chat itself)."""

    __tablename__ = "chat_states"

    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"), primary_key=True)
    thread_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=0)
    current_image_id: Mapped[int | None] = mapped_column(RowId, ForeignKey("images.id"))
    # An album sent without a caption: its image ids (JSON list) wait for the next text.
    pending_album: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    current_image: Mapped[Image | None] = relationship(lazy="raise")


# Ids that buttons name are never reused (SQLite reuses the top rowid without AUTOINCREMENT).
DURABLE_IDS = {"sqlite_autoincrement": True}


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = DURABLE_IDS

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"), index=True)
    thread_id: Mapped[int] = mapped_column(BigInteger, default=0)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    request_message_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[str] = mapped_column(Text)
    dialect: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(128))
    aspect_ratio: Mapped[str | None] = mapped_column(String(8))
    image_size: Mapped[str | None] = mapped_column(String(4))
    # every insert names its status; the default is the one the column always had
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_detail: Mapped[str | None] = mapped_column(Text)
    model_text: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    upstream_ms: Mapped[int | None] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    search: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The model's turn (gemini parts, inline images replaced by {"blob": sha256}) for history.
    model_parts: Mapped[str | None] = mapped_column(Text)
    # When the request first went upstream (it may be billed from then on), and when the
    # result reached the chat: a restart settles running jobs and undelivered results by these.
    upstream_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The replica running the job (bot/services/replicas.py): a dead owner's jobs are taken over.
    owner: Mapped[str | None] = mapped_column(String(36))

    inputs: Mapped[list[JobInput]] = relationship(
        back_populates="job", order_by="JobInput.position", lazy="raise"
    )


class JobInput(Base):
    """The images a job was given, in order: an output image's parents are its job's inputs."""

    __tablename__ = "job_inputs"

    job_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(RowId, ForeignKey("images.id"), index=True)

    job: Mapped[Job] = relationship(back_populates="inputs", lazy="raise")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = DURABLE_IDS

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"), index=True)
    source: Mapped[str] = mapped_column(String(8))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    mime: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(RowId, ForeignKey("jobs.id"), index=True)
    tg_file_id: Mapped[str | None] = mapped_column(String(256))
    tg_file_unique_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Who stored it (the asker, for results): the per-user daily storage limit counts by this.
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


class ImageMessage(Base):
    """Where an image was shown in Telegram, so a reply to that message finds the image."""

    __tablename__ = "image_messages"
    __table_args__ = (UniqueConstraint("chat_id", "message_id"), DURABLE_IDS)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    image_id: Mapped[int] = mapped_column(RowId, ForeignKey("images.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SubjectKind(StrEnum):
    USER = "user"
    CHAT = "chat"


class SubjectRule(Base):
    """What admins set at run time for one user or chat: allowed/denied, daily image limit."""

    __tablename__ = "subject_rules"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    allowed: Mapped[bool | None] = mapped_column(Boolean)
    daily_limit: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class LedgerKind(StrEnum):
    PURCHASE = "purchase"
    RESERVE = "reserve"
    CHARGE = "charge"
    RELEASE = "release"
    REFUND = "refund"


class LedgerEntry(Base):
    """One movement of Stars credits: an account's balance is the sum of its rows, never a
    number edited in place. Unique (kind, charge_id) credits a payment once; unique
    (kind, job_id) reserves, charges and releases a job once."""

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("kind", "charge_id", name="uq_ledger_kind_charge_id"),
        UniqueConstraint("kind", "job_id", name="uq_ledger_kind_job_id"),
        DURABLE_IDS,
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Integer)  # Stars, signed: + credits, - debits
    job_id: Mapped[int | None] = mapped_column(RowId, ForeignKey("jobs.id"))
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    # telegram_payment_charge_id of the purchase (a purchase's row, and its refund's)
    charge_id: Mapped[str | None] = mapped_column(String(128))
    # a reservation: its paid images at unit_price, and the free ones of the same job
    images: Mapped[int] = mapped_column(Integer, default=0)
    free_images: Mapped[int] = mapped_column(Integer, default=0)
    unit_price: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ChatSponsor(Base):
    """A group whose owner pays its members' images, up to `daily_limit` Stars a UTC day."""

    __tablename__ = "chat_sponsors"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sponsor_id: Mapped[int] = mapped_column(BigInteger)
    daily_limit: Mapped[int] = mapped_column(Integer, default=0)  # 0 = no limit
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ChatStyle(Base):
    """A chat's own style (/style add): a prompt template with a `{prompt}` slot. Its id is
    named by gallery buttons, so it is never handed out again."""

    __tablename__ = "chat_styles"
    __table_args__ = (UniqueConstraint("chat_id", "name"), DURABLE_IDS)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"), index=True)
    name: Mapped[str] = mapped_column(String(32))  # lower case: one name, however typed
    template: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int] = mapped_column(BigInteger)  # who added it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PendingStyle(Base):
    """A style chosen for the next text of a chat (or topic); that text takes it once."""

    __tablename__ = "pending_styles"

    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"), primary_key=True)
    thread_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=0)
    template: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WebhookUpdate(Base):
    """An update Telegram POSTed in webhook mode, recorded before it is acknowledged: its
    update_id dedupes a redelivery; `started_at` is set once it is handed to the handlers, so
    one recorded but never started (the process died) is processed at the next start."""

    __tablename__ = "webhook_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[str] = mapped_column(Text)  # the JSON Telegram sent
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Whose update it is (None: no chat, e.g. an inline query): one replica at a time takes a
    # chat's updates.
    chat_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


class Replica(Base):
    """A running `python -m bot` process: alive while its heartbeat (`seen_at`) is fresh.
    `flood_until` is the end of a Telegram flood pause it was told, which every replica keeps."""

    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    flood_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChatLease(Base):
    """The replica that handles a chat's webhook updates now, one after the other in update_id
    order; the lease lapses with its owner's heartbeat."""

    __tablename__ = "chat_leases"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(36), index=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
