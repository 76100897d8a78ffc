"""The console channel: chat with the assistant in a terminal, through the same core."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.console import Console

from bot.services.assistant import handle_message
from bot.services.buttons import handle_callback
from bot.services.context import Services
from bot.services.messages import Button, IncomingCallback, IncomingMessage, Reply, Sender

CONSOLE_CHANNEL = "console"
QUIT_WORDS = {"/quit", "/exit"}


def console_sender(*, user_id: int, name: str) -> Sender:
    first, _, last = name.partition(" ")
    return Sender(
        user_id=user_id, chat_id=user_id, first_name=first or None, last_name=last or None
    )


def chat_turn(services: Services, sender: Sender, text: str) -> list[Reply]:
    """One message from the console user; returns every reply, to them and to staff."""
    message = IncomingMessage(sender=sender, text=text, channel=CONSOLE_CHANNEL)
    return handle_message(services, message)


def press_turn(services: Services, sender: Sender, button: Button) -> list[Reply]:
    """A press on one of the buttons the bot sent; its notice, if any, comes first."""
    callback = IncomingCallback(sender=sender, data=button.data, channel=CONSOLE_CHANNEL)
    notice, replies = handle_callback(services, callback)
    return ([Reply(sender.chat_id, notice)] if notice else []) + replies


def print_replies(
    console: Console, sender: Sender, replies: list[Reply], *, staff_chats: Iterable[int] = ()
) -> list[Button]:
    """Print the replies; returns the buttons sent to the user, numbered from 1 as shown.
    Replies to other chats say whose: a staff chat (``staff_chats``) or a customer's."""
    buttons: list[Button] = []
    staff = set(staff_chats)
    for reply in replies:
        if reply.chat_id == sender.chat_id:
            who = "bot"
        elif reply.chat_id in staff:
            who = f"bot → staff chat {reply.chat_id}"
        else:
            who = f"bot → customer chat {reply.chat_id}"
        console.print(f"[bold green]{who}:[/] ", end="")
        console.print(reply.text, markup=False, highlight=False)
        if reply.document is not None:
            console.print(f"   📎 {reply.filename} ({len(reply.document):,} bytes)", markup=False)
        for row in reply.buttons:
            labels = []
            for button in row:
                if reply.chat_id == sender.chat_id:
                    buttons.append(button)
                    labels.append(f"[{len(buttons)}] {button.label}")
                else:
                    labels.append(f"[{button.label}]")
            console.print("   " + "   ".join(labels), markup=False)
    if buttons:
        console.print("   (type a button's number to press it)", style="dim")
    return buttons


def run_console(
    services: Services,
    *,
    sender: Sender,
    console: Console,
    read: Callable[[str], str] = input,
    lines: Iterable[str] | None = None,
) -> int:
    """Read lines until EOF or /quit; returns the number of messages sent."""
    console.print(
        f"Chatting as [bold]{sender.first_name or 'you'}[/] (user id {sender.user_id}). "
        "Type /help for commands, /quit to leave."
    )
    count = 0
    buttons: list[Button] = []
    source = iter(lines) if lines is not None else None
    while True:
        try:
            text = next(source) if source is not None else read("you: ")
        except (EOFError, StopIteration, KeyboardInterrupt):
            console.print()
            return count
        if text.strip() in QUIT_WORDS:
            return count
        if not text.strip():
            continue
        choice = text.strip().strip("[]")
        if choice.isdigit() and 1 <= int(choice) <= len(buttons):
            replies = press_turn(services, sender, buttons[int(choice) - 1])
        else:
            replies = chat_turn(services, sender, text)
        buttons = print_replies(
            console, sender, replies, staff_chats=services.staff_destinations()
        )
        count += 1
