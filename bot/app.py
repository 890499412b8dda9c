"""Wiring: the PTB Application, its handlers, and the services that live as long as it does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    Update,
)
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChosenInlineResultHandler,
    CommandHandler,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    PreCheckoutQueryHandler,
    TypeHandler,
    filters,
)

from bot.config import Settings
from bot.diagnostics import LoopMonitor
from bot.dispatch import Dispatcher
from bot.i18n import LANGS, t
from bot.metrics import METRICS
from bot.ops import DATABASE_KEY, OpsServer
from bot.providers.base import Endpoint
from bot.providers.factory import build_provider, endpoints_from_settings, make_http_client
from bot.providers.pricing import price_per_image, stars_per_image
from bot.providers.profiles import Catalog
from bot.services.access import AccessLists, AccessService
from bot.services.generation import GenerationLimits, GenerationService
from bot.services.images import ImageLibrary
from bot.services.inbox import Inbox
from bot.services.ordering import ChatQueue, FairScheduler
from bot.services.payments import Wallet
from bot.services.personal import PersonalData
from bot.services.prefs import PrefsService
from bot.services.quotas import QuotaService
from bot.services.recovery import RecoveryService
from bot.services.replicas import Replicas
from bot.services.stats import StatsService
from bot.services.storage_limit import StorageLimit
from bot.services.styles import StyleService
from bot.storage.blobs import BlobStore, LocalBlobStore
from bot.storage.database import Database
from bot.storage.db import create_engine, create_sessionmaker
from bot.storage.recent import RecentBlobs
from bot.telegram import gate
from bot.telegram.albums import AlbumCollector
from bot.telegram.context import SERVICES_KEY, Services
from bot.telegram.errors import endpoint_fault_notifier, on_error
from bot.telegram.handlers import (
    admin,
    callbacks,
    commands,
    group,
    inline,
    payments,
    personal,
    private,
)
from bot.telegram.progress import ProgressBudget, ProgressTimings
from bot.telegram.ratelimit import MessageRateLimiter
from bot.telegram.recovery import RECOVERY_KEY, REPLICAS_KEY, finish_recovery, start_recovery
from bot.telegram.sharing import Sharing
from bot.telegram.transport import AiohttpRequest
from bot.telegram.updates import TolerantBot
from bot.webhook import DISPATCHER_KEY, INBOX_KEY, WebhookConfig, WebhookServer

log = logging.getLogger(__name__)
DIAGNOSTICS_KEY = "_diagnostics_file"
HTTP_LISTEN_KEY = "_http_listen"
WEBHOOK_KEY = "_webhook"
# Updates handled at once. Most of them wait for the upstream (seconds) and hold little, so
# this is far above PTB's default of 256: chat 257 must not wait for chat 1's image.
MAX_CONCURRENT_UPDATES = 4096
# On a shared database, seconds before another replica's /allow or /deny holds here too.
ACCESS_RULES_MAX_AGE = 1.0

PRIVATE_COMMANDS = (
    "start",
    "help",
    "new",
    "styles",
    "ratio",
    "history",
    "undo",
    "settings",
    "usage",
    "export",
    "forget",
)
GROUP_COMMANDS = ("imagine", "edit", "new", "styles", "ratio", "history", "usage", "help")
PAID_COMMANDS = ("buy", "balance")  # in both menus, in paid mode only


def build_application(
    settings: Settings, *, progress: ProgressTimings | None = None, rate_limiter: bool = True
) -> Application:
    """The Application `python -m bot` runs; tests build exactly this one."""
    root = settings.telegram_api_url
    # The bot is built here (not by the builder) so getUpdates can skip an unreadable update;
    # token, URLs, transports and rate limiter are the ones the builder would have been given.
    tg_bot = TolerantBot(
        settings.token,
        base_url=f"{root}/bot",
        base_file_url=f"{root}/file/bot",
        request=AiohttpRequest(read_timeout=30.0, media_write_timeout=120.0),
        # getUpdates on its own connection (a long poll must not hold a sender's), same client
        get_updates_request=AiohttpRequest(pool_size=1),
        rate_limiter=(
            MessageRateLimiter(max_retries=3)
            if rate_limiter and settings.telegram_rate_limiter
            else None
        ),
        # Every text the bot sends is HTML: catalog texts carry tags, and user or model words
        # in them are escaped (bot.i18n.t, bot.telegram.replies).
        defaults=Defaults(parse_mode=ParseMode.HTML),
    )
    app: Application = (
        ApplicationBuilder()
        .bot(tg_bot)
        .concurrent_updates(MAX_CONCURRENT_UPDATES)
        .post_init(_open_services(settings, progress or ProgressTimings()))
        .post_shutdown(_close_services)
        .build()
    )
    add_handlers(app)
    app.bot_data[DIAGNOSTICS_KEY] = settings.bot_diagnostics_file
    app.bot_data[HTTP_LISTEN_KEY] = settings.http_listen
    app.bot_data[WEBHOOK_KEY] = WebhookConfig.of(settings)
    return app


async def serve(
    app: Application, stop: asyncio.Event, on_started: Callable[[], None] | None = None
) -> None:
    """Run the bot until `stop` is set: what `python -m bot` does, and what the tests run.
    `on_started` runs once everything is up, before the first update is handled."""
    path = app.bot_data.get(DIAGNOSTICS_KEY)
    monitor = LoopMonitor(path) if path is not None else None
    if monitor is not None:
        monitor.start()
    await app.initialize()
    recovering: list[asyncio.Task[None]] = []
    sharing: Sharing | None = None
    dispatcher: Dispatcher | None = None
    webhook: WebhookConfig | None = app.bot_data.get(WEBHOOK_KEY)
    listen = app.bot_data.get(HTTP_LISTEN_KEY)
    # Webhook mode: the webhook server answers the ops routes too; no server on HTTP_LISTEN.
    ops = OpsServer(app, listen) if listen and webhook is None else None
    hook = WebhookServer(app, webhook) if webhook is not None else None
    try:
        if ops is not None:
            await ops.start()  # /healthz answers from here on; /readyz once services are up
        if hook is not None:
            await hook.start()  # updates are recorded once the database is open
        if app.post_init is not None:
            await app.post_init(app)
        # Before taking updates: payments Telegram has and the ledger lacks are credited, the
        # dead process's jobs are settled, and their chats' turns held.
        await payments.reconcile_payments(app)
        recovering = await start_recovery(app)
        assert app.updater is not None
        if hook is None:
            await app.updater.start_polling(
                poll_interval=0.0, timeout=10, allowed_updates=Update.ALL_TYPES
            )
        await app.start()
        if hook is not None and webhook is not None:
            await app.bot.set_webhook(
                webhook.url, secret_token=webhook.secret, allowed_updates=Update.ALL_TYPES
            )
            dispatcher = _dispatcher(app)
            app.bot_data[DISPATCHER_KEY] = dispatcher
            dispatcher.start()
        # The first beat's sweep takes the updates a dead process recorded and never handed
        # over (the updates arriving meanwhile are taken once each, see bot.dispatch).
        sharing = Sharing(app, app.bot_data[REPLICAS_KEY], recovering, dispatcher)
        await sharing.start()
        if on_started is not None:
            on_started()
        log.info("polling for updates" if hook is None else "taking updates by webhook")
        await stop.wait()
        log.info("stopping")
        if hook is not None:
            await hook.stop()  # no new updates; the webhook stays set for the next start
        if dispatcher is not None:
            await dispatcher.stop()  # what was not handed over waits for the next taker
        sharing.stop_taking()
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await finish_recovery(recovering)
        await sharing.stop()  # beats until its jobs are done, then leaves
        sharing = None
    finally:
        if hook is not None:
            await hook.stop()
        if ops is not None:
            await ops.stop()
        for task in recovering:
            task.cancel()  # only on an error: finish_recovery has waited for them otherwise
        await asyncio.gather(*recovering, return_exceptions=True)
        if dispatcher is not None:
            await dispatcher.stop()
        if sharing is not None:
            await sharing.stop()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        await app.shutdown()
        if monitor is not None:
            await monitor.stop()


def _dispatcher(app: Application) -> Dispatcher:
    svc: Services = app.bot_data[SERVICES_KEY]
    albums: AlbumCollector = app.bot_data[private.ALBUMS_KEY]
    return Dispatcher(
        app,
        app.bot_data[INBOX_KEY],
        app.bot_data[REPLICAS_KEY],
        lambda chat_id: svc.queue.busy(chat_id) or albums.holds(chat_id),
        # its settings may have changed on the replica that held it before
        on_take=svc.prefs.forget,
    )


def add_handlers(app: Application) -> None:
    private_chat, groups = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    # The gate also loads the chat's prefs, once it lets an update through.
    app.add_handler(TypeHandler(Update, gate.access_gate), group=-1)
    # Paid mode: checkout answers and credits come before anything else can match.
    app.add_handler(PreCheckoutQueryHandler(payments.on_pre_checkout))
    app.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, payments.on_successful_payment))
    for name, callback in (
        ("start", commands.cmd_start),
        ("help", commands.cmd_help),
        ("new", commands.cmd_new),
        ("ratio", commands.cmd_ratio),
        ("history", commands.cmd_history),
        ("undo", commands.cmd_undo),
        ("settings", commands.cmd_settings),
        ("styles", commands.cmd_styles),
        ("style", commands.cmd_style),
        ("usage", admin.cmd_usage),
        ("allow", admin.cmd_allow),
        ("deny", admin.cmd_deny),
        ("quota", admin.cmd_quota),
        ("stats", admin.cmd_stats),
        ("buy", payments.cmd_buy),
        ("balance", payments.cmd_balance),
        ("refund", payments.cmd_refund),
        ("sponsor", payments.cmd_sponsor),
        ("export", personal.cmd_export),
        ("forget", personal.cmd_forget),
    ):
        app.add_handler(CommandHandler(name, callback))
    app.add_handler(CommandHandler("imagine", group.cmd_imagine, filters=groups))
    app.add_handler(CommandHandler("edit", group.cmd_edit, filters=groups))
    request_caption = filters.CaptionRegex(r"^/(imagine|edit)(@\w+)?(\s|$)")
    app.add_handler(
        MessageHandler(groups & filters.PHOTO & request_caption, group.on_captioned_photo)
    )
    app.add_handler(
        MessageHandler(groups & filters.PHOTO & ~filters.CAPTION, group.on_album_photo_if_any)
    )
    app.add_handler(
        MessageHandler(groups & filters.TEXT & ~filters.COMMAND, group.on_reply_or_mention)
    )
    app.add_handler(MessageHandler(private_chat & filters.COMMAND, commands.cmd_unknown))
    app.add_handler(MessageHandler(private_chat & filters.TEXT, private.on_text))
    app.add_handler(MessageHandler(private_chat & filters.ANIMATION, private.on_animation))
    app.add_handler(
        MessageHandler(private_chat & (filters.PHOTO | filters.Document.ALL), private.on_image)
    )
    app.add_handler(
        MessageHandler(private_chat & ~filters.StatusUpdate.ALL, private.on_unsupported)
    )
    # Each button handler takes the decoded presses its `press` parameter names.
    for on_press in (
        callbacks.on_original,
        callbacks.on_regenerate,
        callbacks.on_follow_up,
        callbacks.on_pick_ratio,
        callbacks.on_open_styles,
        callbacks.on_style,
        callbacks.on_new,
        callbacks.on_ratio,
        callbacks.on_history_page,
        callbacks.on_history_pick,
        callbacks.on_settings,
        payments.on_open_buy,
        payments.on_buy_pack,
        personal.on_forget,
        personal.on_keep,
    ):
        app.add_handler(callbacks.button_handler(on_press))
    app.add_handler(CallbackQueryHandler(callbacks.on_unknown))  # every press gets its answer
    app.add_handler(InlineQueryHandler(inline.on_inline_query))
    app.add_handler(ChosenInlineResultHandler(inline.on_chosen_inline_result))
    app.add_error_handler(on_error)


def _open_services(
    settings: Settings, progress: ProgressTimings
) -> Callable[[Application], Coroutine[Any, Any, None]]:
    async def post_init(app: Application) -> None:
        engine = create_engine(settings.database_url)
        database = Database(create_sessionmaker(engine))
        http = make_http_client()
        blobs = blob_store(settings)
        endpoints = endpoints_from_settings(settings)
        dialects = {e.dialect for e in endpoints}
        notifier = endpoint_fault_notifier(app.bot, settings.admin_user_ids)
        access = AccessService(
            database,
            AccessLists(
                settings.allowed_user_ids, settings.allowed_chat_ids, settings.admin_user_ids
            ),
            max_age=ACCESS_RULES_MAX_AGE if database.shared else None,
        )
        storage = StorageLimit(
            database,
            mb_per_day=settings.max_stored_mb_per_user_day,
            exempt=settings.admin_user_ids,
        )
        quotas = QuotaService(
            database,
            per_user=settings.daily_images_per_user,
            per_chat=settings.daily_images_per_chat,
            exempt=settings.admin_user_ids,
            storage=storage,
        )
        by_name = {e.name: e for e in endpoints}
        wallet = _wallet(settings, database, endpoints)
        images = ImageLibrary(database, blobs, storage, wallet)
        prefs = PrefsService(database)
        # A server's heartbeats have a connection of their own (a SQLite file has one writer).
        heart_engine = (
            create_engine(settings.database_url, connections=1) if database.shared else None
        )
        replicas = Replicas(
            database,
            settings.replica_lease_seconds,
            exclusive=not database.shared,
            heartbeat=Database(create_sessionmaker(heart_engine)) if heart_engine else None,
        )
        await replicas.join()
        pool = build_provider(settings, http, on_endpoint_fault=notifier)
        scheduler = FairScheduler(
            settings.max_concurrent_jobs,
            settings.max_jobs_per_user,
            elsewhere=replicas.upstream_elsewhere if database.shared else None,
        )
        METRICS.watch_queue("jobs", lambda: scheduler.waiting)
        METRICS.watch_queue("endpoints", lambda: pool.slots.waiting)
        generation = GenerationService(
            database,
            blobs,
            pool,
            model=settings.image_model,
            dialect=endpoints[0].dialect,
            catalog=Catalog(endpoints),
            quotas=quotas,
            scheduler=scheduler,
            pricing=lambda name, model, size: price_per_image(by_name.get(name), model, size),
            limits=GenerationLimits(
                max_prompt_chars=settings.max_caption_prompt,
                max_input_side=settings.max_input_side,
                history_window=settings.history_window,
            ),
            images=images,
            prefs=prefs,
            wallet=wallet,
            owner=replicas.id,
        )
        models = tuple(
            dict.fromkeys([settings.image_model, *(m for e in endpoints for m in e.models)])
        )
        app.bot_data[SERVICES_KEY] = Services(
            settings,
            generation,
            images,
            prefs,
            ChatQueue(),
            progress,
            models,
            access,
            quotas,
            StatsService(database),
            ProgressBudget(),
            StyleService(database),
            wallet,
            personal=PersonalData(database, blobs, prefs),
        )
        app.bot_data[RECOVERY_KEY] = RecoveryService(database, wallet)
        app.bot_data[REPLICAS_KEY] = replicas
        app.bot_data[private.ALBUMS_KEY] = AlbumCollector(progress.album_quiet, private.on_album)
        app.bot_data["_closables"] = (engine, http, blobs, heart_engine)
        await _set_commands(app)
        app.bot_data[DATABASE_KEY] = database  # from now on /readyz asks it
        app.bot_data[INBOX_KEY] = Inbox(database)  # from now on the webhook records updates
        log.info(
            "bot @%s ready (%s, model %s)",
            app.bot.username,
            ", ".join(sorted(dialects)),
            settings.image_model,
        )

    return post_init


def blob_store(settings: Settings) -> BlobStore:
    """The bucket BLOB_STORE_URL names, else the folder under DATA_DIR; the blobs written
    last kept in memory for the read that follows them."""
    return RecentBlobs(_durable_blob_store(settings))


def _durable_blob_store(settings: Settings) -> BlobStore:
    if not settings.blob_store_url:
        return LocalBlobStore(settings.blobs_dir)
    from bot.storage.s3blobs import S3BlobStore, S3Location

    return S3BlobStore(
        S3Location.parse(settings.blob_store_url),
        endpoint_url=settings.s3_endpoint_url,
        access_key_id=settings.s3_access_key_id.get_secret_value(),
        secret_access_key=settings.s3_secret_access_key.get_secret_value(),
        region=settings.s3_region,
    )


def _wallet(settings: Settings, database: Database, endpoints: list[Endpoint]) -> Wallet | None:
    """Paid mode's wallet, pricing each model at the first endpoint that serves it."""
    if settings.paid_mode != "stars":
        return None

    def price(model: str, size: str | None) -> int:
        endpoint = next((e for e in endpoints if not e.models or model in e.models), None)
        return stars_per_image(
            endpoint,
            model,
            size,
            stars_per_usd=settings.stars_per_usd,
            overrides=settings.star_prices,
            default=settings.star_price_default,
        )

    return Wallet(
        database,
        packs=settings.star_packs,
        free_per_day=settings.free_images_per_day,
        price=price,
        exempt=settings.admin_user_ids,
        shown_above=settings.star_price_shown_above,
    )


async def _set_commands(app: Application) -> None:
    """Command menus for private chats and for groups, in every language we speak."""
    paid = PAID_COMMANDS if app.bot_data[SERVICES_KEY].wallet is not None else ()
    menus = (
        (BotCommandScopeAllPrivateChats(), (*PRIVATE_COMMANDS, *paid)),
        (BotCommandScopeAllGroupChats(), (*GROUP_COMMANDS, *paid)),
    )
    for scope, names in menus:
        for lang in LANGS:
            cmds = [BotCommand(c, t(lang, f"cmd_{c}")) for c in names]
            await app.bot.set_my_commands(
                cmds, scope=scope, language_code=None if lang == "en" else lang
            )


async def _close_services(app: Application) -> None:
    app.bot_data.pop(DATABASE_KEY, None)
    app.bot_data.pop(INBOX_KEY, None)
    app.bot_data.pop(DISPATCHER_KEY, None)
    engine, http, blobs, heart_engine = app.bot_data.pop("_closables", (None,) * 4)
    if http is not None:
        await http.aclose()
    if blobs is not None:
        await blobs.close()
    if engine is not None:
        await engine.dispose()
    if heart_engine is not None:
        await heart_engine.dispose()
