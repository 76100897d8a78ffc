"""The console channel: chat with the assistant in a terminal, through the same core."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.console import Console

from bot.services.assistant import handle_message
from bot.services.context import Services
from bot.services.messages import IncomingMessage, Reply, Sender

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


def print_replies(console: Console, sender: Sender, replies: list[Reply]) -> None:
    for reply in replies:
        who = "bot" if reply.chat_id == sender.chat_id else f"bot → staff chat {reply.chat_id}"
        console.print(f"[bold green]{who}:[/] ", end="")
        console.print(reply.text, markup=False, highlight=False)
        for row in reply.buttons:
            console.print("   " + "  ".join(f"[{b.label}]" for b in row), markup=False)


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
        print_replies(console, sender, chat_turn(services, sender, text))
        count += 1
