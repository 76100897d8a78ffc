"""The fake Telegram Bot API server, driven by the real python-telegram-bot and by httpx."""

from __future__ import annotations

import asyncio
import datetime as dtm
import io
import json
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.fake_telegram import FakeTelegramServer, format_text

TOKEN = "4242:AAEtest_token-value"
USER = 111111  # the default injected user (and their private chat)
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="answer:yes")]])
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer(webhook_retry_delay=0.05) as server:
        yield server


@pytest.fixture
def server(shared_server: FakeTelegramServer) -> FakeTelegramServer:
    shared_server.reset()
    return shared_server


@pytest.fixture
async def bot(server: FakeTelegramServer) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as bot:
        yield bot


def api(server: FakeTelegramServer, method: str, token: str = TOKEN, **kwargs: Any) -> Any:
    """A raw Bot API call with httpx; returns (status, JSON or text)."""
    response = httpx.post(f"{server.base_url}{token}/{method}", **kwargs)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# -- identity and auth -----------------------------------------------------------------------


async def test_get_me_describes_the_bot_with_the_token_id(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 4242
    assert me.is_bot and me.username == "crmbot_test_bot" and me.first_name
    assert me.can_join_groups is True
    assert me.can_read_all_group_messages is False
    assert me.supports_inline_queries is False


def test_configured_token_rejects_others_and_unknown_methods_are_404() -> None:
    with FakeTelegramServer(token=TOKEN) as server:
        assert api(server, "getMe")[1]["result"]["id"] == 4242
        assert api(server, "getMe", token="4242:other") == (
            401,
            {"ok": False, "error_code": 401, "description": "Unauthorized"},
        )
        assert api(server, "getMe", token="not-a-token")[0] == 404
        assert api(server, "fooBar") == (
            404,
            {"ok": False, "error_code": 404, "description": "Not Found"},
        )
        assert api(server, "getme")[0] == 200  # method names are case-insensitive


async def test_wrong_token_raises_invalid_token_in_ptb() -> None:
    with FakeTelegramServer(token=TOKEN) as server, pytest.raises(InvalidToken):
        await Bot("4242:wrong", base_url=server.base_url).get_me()


# -- getUpdates ------------------------------------------------------------------------------


async def test_long_poll_returns_as_soon_as_an_update_is_injected(
    server: FakeTelegramServer, bot: Bot
) -> None:
    threading.Timer(0.2, server.inject_message, args=("hello",)).start()
    started = time.monotonic()
    updates = await bot.get_updates(timeout=5)
    elapsed = time.monotonic() - started
    assert 0.15 < elapsed < 2
    assert [update.message.text for update in updates] == ["hello"]


async def test_long_poll_waits_for_the_timeout_when_nothing_comes(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=0.3) == ()
    assert time.monotonic() - started >= 0.25


async def test_offset_confirms_and_negative_offset_keeps_the_tail(
    server: FakeTelegramServer, bot: Bot
) -> None:
    ids = [server.inject_message(f"m{i}")["update_id"] for i in range(3)]
    assert [u.update_id for u in await bot.get_updates()] == ids  # unconfirmed: same again
    assert [u.update_id for u in await bot.get_updates()] == ids
    assert [u.update_id for u in await bot.get_updates(offset=ids[1])] == ids[1:]
    assert await bot.get_updates(offset=ids[2] + 1) == ()
    assert server.pending_updates() == []
    more = [server.inject_message(f"n{i}")["update_id"] for i in range(3)]
    assert [u.update_id for u in await bot.get_updates(offset=-1)] == more[-1:]
    assert [u["update_id"] for u in server.pending_updates()] == more[-1:]
    limited = await bot.get_updates(limit=1)
    assert len(limited) == 1


async def test_a_new_get_updates_terminates_the_waiting_one(
    server: FakeTelegramServer, bot: Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    async with Bot(TOKEN, base_url=server.base_url) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first


async def test_allowed_updates_filters_new_updates(server: FakeTelegramServer, bot: Bot) -> None:
    await bot.get_updates(allowed_updates=["callback_query"])
    server.inject_message("filtered out")
    assert await bot.get_updates() == ()
    assert server.dropped_updates()[0]["message"]["text"] == "filtered out"
    await bot.get_updates(allowed_updates=[])
    server.inject_message("back to defaults")
    assert len(await bot.get_updates()) == 1


async def test_raw_update_is_delivered_verbatim_and_can_be_redelivered(
    server: FakeTelegramServer, bot: Bot
) -> None:
    first = server.inject_message("pay invoice 7")
    [update] = await bot.get_updates()
    assert update.to_dict() == Update.de_json(first, bot).to_dict()
    assert await bot.get_updates(offset=update.update_id + 1) == ()
    again = server.redeliver(first["update_id"])
    assert again == first
    [duplicate] = await bot.get_updates(offset=update.update_id + 1)
    assert duplicate.update_id == first["update_id"]
    assert duplicate.message.text == "pay invoice 7"
    raw = {"update_id": 999_000, "message": {**first["message"], "text": "raw"}}
    assert server.inject_update(raw) == raw
    [delivered] = await bot.get_updates(offset=update.update_id + 1)
    assert delivered.update_id == 999_000 and delivered.message.text == "raw"
    assert server.inject_message("next")["update_id"] == 999_001


# -- webhooks --------------------------------------------------------------------------------


class _Receiver:
    """A tiny webhook endpoint on loopback that fails its first ``failures`` requests."""

    def __init__(self, failures: int = 0, hold: threading.Event | None = None) -> None:
        self.failures = failures
        self.received: list[tuple[str | None, dict[str, Any], int]] = []
        self.hold = hold  # while unset, requests of chat 1 wait before they are answered
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 500 if len(receiver.received) < receiver.failures else 200
                secret = self.headers.get("X-Telegram-Bot-Api-Secret-Token")
                receiver.received.append((secret, body, status))
                if receiver.hold is not None and body["message"]["chat"]["id"] == 1:
                    receiver.hold.wait(10)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    async def wait(self, count: int) -> None:
        for _ in range(100):
            if len(self.received) >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"webhook got {len(self.received)} of {count} requests")


async def test_get_updates_is_a_conflict_while_a_webhook_is_set(bot: Bot) -> None:
    assert await bot.set_webhook("https://example.invalid/hook")
    with pytest.raises(Conflict) as caught:
        await bot.get_updates()
    assert "can't use getUpdates method while webhook is active" in caught.value.message
    assert "use deleteWebhook to delete the webhook first" in caught.value.message
    assert await bot.delete_webhook()
    assert await bot.get_updates() == ()


async def test_webhook_delivery_sends_the_secret_in_order_and_retries(
    server: FakeTelegramServer, bot: Bot
) -> None:
    receiver = _Receiver(failures=1)
    try:
        assert await bot.set_webhook(receiver.url, secret_token="s3cr3t-TOKEN_1")
        first = server.inject_message("one")
        second = server.inject_message("two")
        await receiver.wait(3)
        await asyncio.sleep(0.05)
        secrets_seen = {secret for secret, _, _ in receiver.received}
        assert secrets_seen == {"s3cr3t-TOKEN_1"}
        ids = [body["update_id"] for _, body, _ in receiver.received]
        assert ids == [first["update_id"], first["update_id"], second["update_id"]]
        assert [status for _, _, status in receiver.received] == [500, 200, 200]
        info = await bot.get_webhook_info()
        assert info.url == receiver.url and info.pending_update_count == 0
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )
    finally:
        receiver.http.shutdown()


async def test_webhook_delivers_chats_side_by_side_and_each_chat_in_order(
    server: FakeTelegramServer, bot: Bot
) -> None:
    hold = threading.Event()
    receiver = _Receiver(hold=hold)
    try:
        assert await bot.set_webhook(receiver.url)
        first = server.inject_message("one", user_id=1)
        second = server.inject_message("two", user_id=1)
        other = server.inject_message("three", user_id=2)
        await receiver.wait(2)  # chat 1's first update is held; chat 2's got through
        ids = {body["update_id"] for _, body, _ in receiver.received}  # in either order:
        assert ids == {first["update_id"], other["update_id"]}  # the two chats go side by side
        await asyncio.sleep(0.1)
        assert len(receiver.received) == 2  # chat 1's second waits for its first
        hold.set()
        await receiver.wait(3)
        assert receiver.received[2][1]["update_id"] == second["update_id"]
    finally:
        hold.set()
        receiver.http.shutdown()


async def test_webhook_counts_pending_updates_while_unreachable(
    server: FakeTelegramServer, bot: Bot
) -> None:
    receiver = _Receiver()
    url = receiver.url
    receiver.http.shutdown()
    receiver.http.server_close()
    assert await bot.set_webhook(url)
    server.inject_message("a")
    server.inject_message("b")
    await asyncio.sleep(0.2)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 2
    assert info.last_error_message == "Connection refused"
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert (await bot.get_webhook_info()).pending_update_count == 0


# -- faults ----------------------------------------------------------------------------------


async def test_429_fault_raises_retry_after_with_the_given_delay(
    server: FakeTelegramServer, bot: Bot
) -> None:
    server.inject_fault("sendMessage", status=429, retry_after=3, times=2)
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await bot.send_message(USER, "hi")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert seconds(caught.value.retry_after) == 3
    assert (await bot.send_message(USER, "now it works")).text == "now it works"
    assert [c.error_code for c in server.calls("sendMessage")] == [429, 429, None]


async def test_502_and_500_faults_map_to_network_errors(
    server: FakeTelegramServer, bot: Bot
) -> None:
    server.inject_fault("sendMessage", status=502)
    with pytest.raises(NetworkError, match="Bad Gateway") as caught:
        await bot.send_message(USER, "x")
    assert not isinstance(caught.value, BadRequest)
    server.inject_fault("sendMessage", status=500)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(USER, "x")
    server.inject_fault("sendMessage", status=502)
    status, body = api(server, "sendMessage", data={"chat_id": USER, "text": "x"})
    assert status == 502 and "<h1>502 Bad Gateway</h1>" in body
    assert server.sent_messages() == []


async def test_faults_apply_to_get_updates_too(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject_message("waiting")
    server.inject_fault("getUpdates", status=502)
    with pytest.raises(NetworkError):
        await bot.get_updates()
    assert len(await bot.get_updates()) == 1


async def test_delay_fault_provokes_a_client_timeout_but_still_sends(
    server: FakeTelegramServer, bot: Bot
) -> None:
    server.inject_fault("sendMessage", delay=0.6)
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "slow", read_timeout=0.2)
    [message] = await server.wait_for_async(1, chat_id=USER, timeout=3)
    assert message["text"] == "slow"


# -- sending, editing, validation ------------------------------------------------------------


async def test_send_message_returns_a_full_message(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject_message("hi")
    first = await bot.send_message(USER, "<b>Hi</b> Alice", parse_mode="HTML")
    second = await bot.send_message(USER, "again", reply_markup=KEYBOARD)
    reply = await bot.send_message(USER, "re", reply_to_message_id=second.message_id)
    assert (first.message_id, second.message_id) == (2, 3)  # the user's message was 1
    assert first.text == "Hi Alice" and first.entities[0].type == "bold"
    assert first.from_user.id == 4242 and first.chat.type == "private"
    assert first.chat.first_name == "Alice" and first.date.year >= 2024
    assert second.reply_markup == KEYBOARD
    assert reply.reply_to_message.message_id == second.message_id
    group = await bot.send_message(-1001234, "to a group")
    assert group.chat.type == "supergroup" and group.message_id == 1
    sent = server.sent_messages(chat_id=USER)
    assert [m["text"] for m in sent] == ["Hi Alice", "again", "re"]
    assert server.calls("sendMessage")[1].params["reply_markup"] == KEYBOARD.to_dict()


async def test_text_length_and_emptiness_are_checked_like_telegram(bot: Bot) -> None:
    assert len((await bot.send_message(USER, "a" * 4096)).text) == 4096
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(USER, "a" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(USER, "   ")


@pytest.mark.parametrize(
    ("text", "mode", "error"),
    [
        ("Deal with <customer>", "HTML", 'unsupported start tag "customer" at byte offset 10'),
        ("<b>bold", "HTML", "can't find end tag corresponding to start tag b"),
        ("<b>x</i>", "HTML", 'unmatched end tag at byte offset 4, expected "</b>"'),
        ("price < 5", "HTML", 'unsupported start tag "" at byte offset 6'),
        ("Total: 5.00", "MarkdownV2", "character '.' is reserved"),
        ("*unclosed", "MarkdownV2", "can't find end of bold entity at byte offset 0"),
    ],
)
async def test_malformed_markup_is_rejected(bot: Bot, text: str, mode: str, error: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(USER, text, parse_mode=mode)
    assert "can't parse entities" in caught.value.message.lower()
    assert error in caught.value.message.lower()


async def test_escaped_markup_is_parsed_into_entities(bot: Bot) -> None:
    html = await bot.send_message(USER, "<i>A &lt;b&gt; &amp; 😀 <code>x</code></i>", "HTML")
    assert html.text == "A <b> & 😀 x"
    assert [(e.type, e.offset, e.length) for e in html.entities] == [
        ("italic", 0, 12),
        ("code", 11, 1),
    ]
    md = await bot.send_message(USER, r"*Total:* 5\.00 [site](https://e.com)", "MarkdownV2")
    assert md.text == "Total: 5.00 site"
    assert md.entities[1].url == "https://e.com"


def test_format_text_adds_automatic_entities() -> None:
    formatted = format_text("  /stats@crmbot_test_bot now, see https://x.io or mail a@b.co #q1 ")
    kinds = [entity["type"] for entity in formatted.entities]
    assert formatted.text.startswith("/stats@crmbot_test_bot")
    assert kinds == ["bot_command", "url", "email", "hashtag"]


async def test_edit_and_delete_messages(server: FakeTelegramServer, bot: Bot) -> None:
    sent = await bot.send_message(USER, "draft", reply_markup=KEYBOARD)
    edited = await bot.edit_message_text("final", chat_id=USER, message_id=sent.message_id)
    assert edited.text == "final" and edited.edit_date and edited.reply_markup is None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("final", chat_id=USER, message_id=sent.message_id)
    marked = await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=KEYBOARD)
    assert marked.reply_markup == KEYBOARD
    assert await bot.edit_message_text("inline", inline_message_id="abc") is True
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=999)
    assert server.chat_history(USER)[-1]["text"] == "final"
    assert await bot.delete_message(USER, sent.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(USER, sent.message_id)
    assert server.chat_history(USER) == []


async def test_photos_and_documents_upload_and_reuse_file_ids(
    server: FakeTelegramServer, bot: Bot
) -> None:
    document = await bot.send_document(
        USER, io.BytesIO(b"id,name\n1,Ann\n"), filename="leads.csv", caption="<b>CSV</b>"
    )
    assert document.document.file_name == "leads.csv"
    assert document.document.file_size == 14 and document.caption == "<b>CSV</b>"
    again = await bot.send_document(USER, document.document.file_id)
    assert again.document.file_id == document.document.file_id
    photo = await bot.send_photo(USER, b"\xff\xd8\xff fake jpeg", caption="look")
    assert photo.caption == "look" and len(photo.photo) >= 2
    file = await bot.get_file(photo.photo[-1].file_id)
    assert await file.download_as_bytearray() == b"\xff\xd8\xff fake jpeg"
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_photo(USER, "no-such-file-id")
    uploaded = server.calls("sendDocument")[0].params["document"]
    assert uploaded == {"filename": "leads.csv", "content_type": "text/csv", "size": 14}


async def test_callback_queries_are_answered_once(server: FakeTelegramServer, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Pick", reply_markup=KEYBOARD)
    update = Update.de_json(server.click_button("Yes"), bot)
    query = update.callback_query
    assert query.data == "answer:yes" and query.message.message_id == sent.message_id
    assert query.from_user.id == USER and query.chat_instance
    assert await query.answer("Saved", show_alert=True)
    assert server.callback_answer(query.id) == {
        "text": "Saved",
        "show_alert": True,
        "url": None,
        "cache_time": 0,
    }
    with pytest.raises(BadRequest, match="Query is too old"):
        await query.answer()


async def test_commands_are_stored_per_scope_and_language(
    server: FakeTelegramServer, bot: Bot
) -> None:
    from telegram import BotCommandScopeChat

    assert await bot.set_my_commands([("start", "Start"), ("stats", "Statistics")])
    assert await bot.set_my_commands([("start", "Старт")], language_code="ru")
    assert await bot.set_my_commands([("admin", "Admin")], scope=BotCommandScopeChat(USER))
    assert [c.command for c in await bot.get_my_commands()] == ["start", "stats"]
    assert server.commands(language_code="ru") == [{"command": "start", "description": "Старт"}]
    assert server.commands(scope={"type": "chat", "chat_id": USER})[0]["command"] == "admin"
    assert server.was_called("setMyCommands")
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Bad Command", "x")])


async def test_chat_actions_get_chat_and_blocked_users(
    server: FakeTelegramServer, bot: Bot
) -> None:
    server.inject_message("hello", user_id=5, first_name="Bob", username="bob")
    assert await bot.send_chat_action(5, "typing")
    chat = await bot.get_chat(5)
    assert (chat.first_name, chat.username, chat.type) == ("Bob", "bob", "private")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.get_chat(777)
    server.set_blocked(5)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(5, "still there?")


def test_parameters_are_accepted_as_json_form_and_query_string(
    server: FakeTelegramServer,
) -> None:
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    status, by_json = api(server, "sendMessage", json={"chat_id": USER, "text": "json"})
    assert status == 200 and by_json["result"]["text"] == "json"
    form = {"chat_id": str(USER), "text": "form", "reply_markup": json.dumps(markup)}
    status, by_form = api(server, "sendMessage", data=form)
    assert status == 200 and by_form["result"]["reply_markup"] == markup
    status, by_query = api(server, "sendMessage", params={"chat_id": USER, "text": "query"})
    assert status == 200 and by_query["result"]["chat"]["id"] == USER
    status, bad = api(
        server, "sendMessage", json={"chat_id": USER, "text": "x", "reply_markup": 5}
    )
    assert status == 400 and bad["description"].startswith("Bad Request: can't parse reply")


# -- injected update kinds -------------------------------------------------------------------


INJECTED_KINDS = {
    "command": (lambda s: s.inject_command("/stats", "foo"), lambda u: u.message.text),
    "sticker": (lambda s: s.inject_sticker(emoji="🔥"), lambda u: u.message.sticker.emoji),
    "photo": (
        lambda s: s.inject_photo(caption="receipt"),
        lambda u: (u.message.caption, u.message.text, u.message.photo[-1].width),
    ),
    "voice": (
        lambda s: s.inject_voice(duration=7),
        lambda u: u.message.voice.to_dict()["duration"],
    ),
    "document": (
        lambda s: s.inject_document(file_name="deal.pdf", caption="signed"),
        lambda u: (u.message.document.file_name, u.message.caption),
    ),
    "location": (
        lambda s: s.inject_location(52.5, 13.4),
        lambda u: (u.message.location.latitude, u.message.location.longitude),
    ),
    "contact": (
        lambda s: s.inject_contact("+4930123", "Carol", contact_user_id=9),
        lambda u: (u.message.contact.phone_number, u.message.contact.user_id),
    ),
    "group": (
        lambda s: s.inject_group_message("hi all", chat_type="group", chat_title="Sales"),
        lambda u: (u.message.chat.type, u.message.chat.id < 0, u.message.chat.title),
    ),
    "supergroup": (
        lambda s: s.inject_group_message("hey", user_id=77),
        lambda u: (u.message.chat.type, u.message.chat.id, u.message.from_user.id),
    ),
    "channel": (
        lambda s: s.inject_channel_post("news"),
        lambda u: (u.channel_post.text, u.channel_post.chat.type, u.channel_post.sender_chat.id),
    ),
}
EXPECTED = {
    "command": "/stats foo",
    "sticker": "🔥",
    "photo": ("receipt", None, 1280),
    "voice": 7,
    "document": ("deal.pdf", "signed"),
    "location": (52.5, 13.4),
    "contact": ("+4930123", 9),
    "group": ("group", True, "Sales"),
    "supergroup": ("supergroup", -1001000000001, 77),
    "channel": ("news", "channel", -1002000000001),
}


@pytest.mark.parametrize("kind", sorted(INJECTED_KINDS))
async def test_injected_updates_parse_in_ptb(
    server: FakeTelegramServer, bot: Bot, kind: str
) -> None:
    inject, read = INJECTED_KINDS[kind]
    update = Update.de_json(inject(server), bot)
    assert read(update) == EXPECTED[kind]
    [polled] = await bot.get_updates()
    assert polled.to_dict() == update.to_dict()


async def test_command_sticker_and_edit_details(server: FakeTelegramServer, bot: Bot) -> None:
    command = Update.de_json(server.inject_command("/start"), bot).message
    assert command.entities[0].type == "bot_command" and command.entities[0].offset == 0
    sticker = Update.de_json(server.inject_sticker(), bot).message.sticker
    assert (sticker.type, sticker.width, sticker.is_animated, sticker.is_video) == (
        "regular",
        512,
        False,
        False,
    )
    original = server.inject_message("call me tomorow", user_id=USER)
    edited = Update.de_json(
        server.inject_edited_message(original["message"]["message_id"], "call me tomorrow"), bot
    ).edited_message
    assert edited.text == "call me tomorrow" and edited.edit_date is not None
    assert edited.message_id == original["message"]["message_id"]
    with pytest.raises(ValueError, match="no message"):
        server.inject_edited_message(9999, "nope")


# -- waiting and the control API -------------------------------------------------------------


def test_wait_for_blocks_until_the_bot_has_sent_enough(server: FakeTelegramServer) -> None:
    def send_later() -> None:
        for text in ("one", "two"):
            time.sleep(0.1)
            api(server, "sendMessage", json={"chat_id": USER, "text": text})

    threading.Thread(target=send_later).start()
    messages = server.wait_for(2, chat_id=USER, timeout=5)
    assert [m["text"] for m in messages] == ["one", "two"]
    found = server.wait_for(lambda ms: any(m["text"] == "two" for m in ms), timeout=1)
    assert len(found) == 2
    with pytest.raises(TimeoutError):
        server.wait_for(3, chat_id=USER, timeout=0.1)
    assert server.wait_for_call("sendMessage", count=2)[1].params["text"] == "two"


def test_control_http_api(server: FakeTelegramServer) -> None:
    control = server.control_url
    injected = httpx.post(f"{control}/inject/command", json={"command": "/start", "user_id": 5})
    assert injected.json()["result"]["message"]["text"] == "/start"
    raw = {"update_id": 5_000_000, "callback_query": {"id": "1", "from": {}, "chat_instance": "c"}}
    assert httpx.post(f"{control}/updates", json=raw).json()["result"] == raw
    pending = httpx.get(f"{control}/updates").json()["result"]
    assert [update["update_id"] for update in pending][-1] == 5_000_000
    bad = httpx.post(f"{control}/inject/message", json={"txt": "typo"})
    assert bad.status_code == 400
    fault = {"method": "sendMessage", "status": 429, "retry_after": 2}
    assert httpx.post(f"{control}/faults", json=fault).json()["ok"]
    status, body = api(server, "sendMessage", json={"chat_id": 5, "text": "x"})
    assert status == 429 and body["parameters"] == {"retry_after": 2}
    api(server, "sendMessage", json={"chat_id": 5, "text": "ok"})
    assert httpx.get(f"{control}/sent", params={"chat_id": 5}).json()["result"][0]["text"] == "ok"
    waited = httpx.post(f"{control}/wait", json={"count": 1, "chat_id": 5, "timeout": 1})
    assert waited.json()["result"][0]["text"] == "ok"
    timed_out = httpx.post(f"{control}/wait", json={"count": 5, "timeout": 0.1})
    assert timed_out.status_code == 408
    calls = httpx.get(f"{control}/calls", params={"method": "sendMessage"}).json()["result"]
    assert [c["ok"] for c in calls] == [False, True]
    assert httpx.get(f"{control}/requests").json()["result"] == ["sendMessage", "sendMessage"]
    history = httpx.get(f"{control}/chats/5/messages").json()["result"]
    assert [m["text"] for m in history] == ["/start", "ok"]
    assert httpx.post(f"{control}/reset").json()["result"] is True
    assert server.pending_updates() == [] and server.requests() == []


# -- the real thing: a PTB Application polling the fake ---------------------------------------


async def test_application_round_trip_with_polling(server: FakeTelegramServer) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text("Welcome!", reply_markup=KEYBOARD)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer()
        await update.callback_query.edit_message_text(f"You said {update.callback_query.data}")

    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=2)
        server.inject_command("/start")
        [welcome] = await server.wait_for_async(1, chat_id=USER)
        assert welcome["text"] == "Welcome!"
        server.click_button("Yes")
        await server.wait_for_call_async("editMessageText")
        await app.updater.stop()
        await app.stop()
    assert server.chat_history(USER)[-1]["text"] == "You said answer:yes"
    assert server.requests()[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    assert server.pending_updates() == []


def test_module_runs_standalone() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.fake_telegram", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Fake Telegram Bot API listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1].strip()
        response = httpx.get(f"{url}/bot{TOKEN}/getMe")  # the port is bound before printing
        assert response.json()["result"]["username"] == "crmbot_test_bot"
    finally:
        process.terminate()
        process.wait(timeout=10)
