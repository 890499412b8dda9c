"""Private chat: text draws or refines, photos are edited or kept, albums are composed."""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services.errors import UserInputError
from bot.services.types import StoredImage
from bot.telegram.context import lang, services, thread_of, who_of
from bot.telegram.errors import reply_error
from bot.telegram.flow import chat_turn, run_job
from bot.telegram.inputs import (
    GROUP_REQUEST_COMMANDS,
    FileRef,
    download,
    image_file_of,
    leading_command,
    strip_command,
)

ALBUMS_KEY = "albums"


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text: edit the image it replies to, else a waiting album or the current image."""
    message = update.effective_message
    assert message is not None and message.text is not None
    async with chat_turn(update, context):
        try:
            inputs = await inputs_for_text(update, context, message)
        except Exception as exc:
            await reply_error(update, context, exc)
            return
        await run_job(update, context, message.text, inputs)


async def inputs_for_text(
    update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message
) -> list[StoredImage]:
    """What a text works on: a replied-to image, a waiting album, or the current image."""
    svc, who = services(context), who_of(update)
    replied = await replied_image(update, context, message)
    if replied is not None:
        return [replied]
    refine = (await svc.prefs.get(who.chat_id)).refine
    return await svc.images.for_text(who.chat_id, who.thread_id, refine=refine)


async def on_image(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or image file: with a caption it is edited; without, it waits for the next text."""
    message = update.effective_message
    assert message is not None
    if message.media_group_id:
        key = (message.chat.id, thread_of(message), message.media_group_id)
        context.application.bot_data[ALBUMS_KEY].add(key, update, context)
        return
    caption = (message.caption or "").strip()
    async with chat_turn(update, context):
        try:
            image = await take_image(update, context, message, make_current=not caption)
            if image is None:
                raise UserInputError("not_image_document")
        except Exception as exc:
            await reply_error(update, context, exc)
            return
        if caption:
            await run_job(update, context, caption, [image])
        else:
            await message.reply_text(
                t(lang(update, context), "photo_kept"), parse_mode=ParseMode.HTML
            )


async def on_album(updates: list[Update], context: ContextTypes.DEFAULT_TYPE) -> None:
    """All photos of one album: with a caption (on any item) they are composed at once."""
    first = updates[0]
    caption = (
        next(
            (
                u.effective_message.caption
                for u in updates
                if u.effective_message and u.effective_message.caption
            ),
            "",
        )
        or ""
    )
    if first.effective_chat is not None and first.effective_chat.type != "private":
        if leading_command(caption) not in GROUP_REQUEST_COMMANDS:
            return  # a group album not addressed to the bot
        caption = strip_command(caption)
    async with chat_turn(first, context):
        try:
            images = await take_album(first, context, updates)
            if not caption.strip():
                await services(context).images.keep_album(who_of(first), images)
                assert first.effective_message is not None
                await first.effective_message.reply_text(
                    t(lang(first, context), "album_kept", count=len(images)),
                    parse_mode=ParseMode.HTML,
                )
                return
        except Exception as exc:
            await reply_error(first, context, exc)
            return
        await run_job(first, context, caption, images)


async def on_animation(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """GIFs arrive as animations: say clearly that still images are needed."""
    await reply_error(update, context, UserInputError("image_animated"))


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, voice, video, locations…: explain what the bot understands."""
    await reply_error(update, context, UserInputError("unsupported_message"))


async def take_image(
    update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message, *, make_current: bool
) -> StoredImage | None:
    """Download and keep the image a message carries (None if it carries none)."""
    ref = image_file_of(message)
    if ref is None:
        return None
    data = await download(context.bot, ref)
    return await services(context).images.take_user_image(
        who_of(update),
        data,
        file_id=ref.file_id,
        file_unique_id=ref.file_unique_id,
        message_id=message.message_id,
        make_current=make_current,
    )


async def take_album(
    first: Update, context: ContextTypes.DEFAULT_TYPE, updates: list[Update]
) -> list[StoredImage]:
    """Keep an album's images, or none of them: each is checked and the album is counted
    (and weighed against the storage limit) before the first one is stored."""
    svc, who = services(context), who_of(first)
    model = (await svc.prefs.get(who.chat_id)).model  # the chat's model decides the limit
    accepted: list[tuple[Message, FileRef, bytes, StoredImage]] = []
    for update in updates:
        message = update.effective_message
        assert message is not None
        ref = image_file_of(message)
        if ref is None:
            continue
        data = await download(context.bot, ref)
        accepted.append((message, ref, data, await svc.images.accept(data, file_id=ref.file_id)))
        # one too many is enough to know: the rest are not even downloaded
        svc.generation.check_inputs([candidate for *_, candidate in accepted], model)
    if not accepted:
        raise UserInputError("not_image_document")
    await svc.images.check_room(who, sum(len(data) for _, _, data, _ in accepted))
    return [
        await svc.images.keep(
            who,
            candidate,
            data,
            file_unique_id=ref.file_unique_id,
            message_id=message.message_id,
            make_current=False,
        )
        for message, ref, data, candidate in accepted
    ]


async def replied_image(
    update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message
) -> StoredImage | None:
    """The image of the message this one replies to: known from the database, or the user's."""
    replied = message.reply_to_message
    if replied is None:
        return None
    known = await services(context).images.for_message(replied.chat.id, replied.message_id)
    if known is not None:
        return known
    return await take_image(update, context, replied, make_current=False)
