"""Where the texts of an AI exchange sit in its JSON bodies.

The guardrails read (and may rewrite) prompts and answers of three wire formats
without knowing which one a request uses: each format keeps its texts in places
the others do not use, so one walk finds them all.

Requests:

- OpenAI Chat Completions and Anthropic Messages: ``messages[].content``, a string
  or a list of parts/blocks whose ``text`` is a string (``type`` text, input_text,
  output_text); Anthropic ``tool_result`` blocks hold a string or blocks again;
  Anthropic ``system`` is a string or a list of text blocks.
- OpenAI Responses: ``instructions`` (a string) and ``input``, a string or a list of
  items: messages (``content`` a string or parts) and ``function_call_output``
  items (``output`` a string).
- Legacy completions, embeddings, moderations: ``prompt`` / ``input`` as a string
  or a list of strings.
- Any other JSON object (the variables of a prompt API): every string in it, at any
  depth, as a user text.

Answers: ``choices[].message.content`` (or ``choices[].text``) of a chat or text
completion, ``content[]`` text blocks of an Anthropic message, ``output[]`` message
items' ``output_text`` parts of a Responses object.

Each text found is a :class:`Text`: where it is (so it can be replaced in place)
and the role it speaks for (``system``, ``user``, ``assistant`` or ``tool``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")

_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_ROLE_OF: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}


@dataclass(slots=True)
class Text:
    """One text of a body: ``holder[key]`` is the string, spoken by ``role``."""

    holder: Any  # the dict or list that holds it
    key: Any  # its key there (str for a dict, int for a list)
    role: Role
    #: the message (or input item) it belongs to, counted from 0; -1 outside messages
    turn: int = -1

    @property
    def value(self) -> str:
        text: str = self.holder[self.key]
        return text

    def replace(self, value: str) -> None:
        self.holder[self.key] = value


def _parts(parts: list[Any], role: Role, found: list[Text]) -> None:
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            found.append(Text(part, "text", role))
        elif kind == "tool_result":
            _content(part, "content", "tool", found)


def _content(holder: dict[str, Any], key: str, role: Role, found: list[Text]) -> None:
    content = holder.get(key)
    if isinstance(content, str):
        found.append(Text(holder, key, role))
    elif isinstance(content, list):
        _parts(content, role, found)


def _role(item: dict[str, Any], default: Role = "user") -> Role:
    role = item.get("role")
    return _ROLE_OF.get(role, default) if isinstance(role, str) else default


def _strings(holder: dict[str, Any], key: str, found: list[Text]) -> bool:
    """A string or a list of strings under ``key`` (user texts); False when neither."""
    value = holder.get(key)
    if isinstance(value, str):
        found.append(Text(holder, key, "user"))
        return True
    if isinstance(value, list) and value and all(isinstance(each, str) for each in value):
        found.extend(Text(value, index, "user") for index in range(len(value)))
        return True
    return False


#: the members that make a body a request of one of the model APIs
_PROMPT_MEMBERS = frozenset({"messages", "input", "prompt", "system", "instructions"})


def _every_string(body: dict[str, Any]) -> list[Text]:
    """Each string of ``body`` at any depth, as a user text, in document order
    (walked with a stack of its own: JSON may nest deeper than Python recurses)."""
    found: list[Text] = []
    walks: list[tuple[Any, Iterator[Any]]] = [(body, iter(body.items()))]
    while walks:
        holder, pairs = walks[-1]
        for key, value in pairs:
            if isinstance(value, str):
                found.append(Text(holder, key, "user"))
            elif isinstance(value, dict):
                walks.append((value, iter(value.items())))
                break
            elif isinstance(value, list):
                walks.append((value, enumerate(value)))
                break
        else:
            walks.pop()
    return found


def _in_turn(found: list[Text], start: int, turn: int) -> None:
    for text in found[start:]:
        text.turn = turn


def last_turn(texts: list[Text]) -> list[Text]:
    """The texts of the last message among ``texts`` (all its parts)."""
    if not texts:
        return texts
    turn = texts[-1].turn
    return [text for text in texts if text.turn == turn]


def prompt_texts(body: Any) -> list[Text]:
    """Every text of a request body (a parsed JSON value), in the order it reads."""
    found: list[Text] = []
    if not isinstance(body, dict):
        return found
    if _PROMPT_MEMBERS.isdisjoint(body):
        return _every_string(body)
    system = body.get("system")
    if isinstance(system, str):
        found.append(Text(body, "system", "system"))
    elif isinstance(system, list):
        _parts(system, "system", found)
    if isinstance(body.get("instructions"), str):
        found.append(Text(body, "instructions", "system"))
    messages = body.get("messages")
    if isinstance(messages, list):
        for turn, message in enumerate(messages):
            if isinstance(message, dict):
                start = len(found)
                _content(message, "content", _role(message), found)
                _in_turn(found, start, turn)
    if not _strings(body, "input", found):
        items = body.get("input")
        if isinstance(items, list):
            for turn, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                start = len(found)
                if item.get("type") == "function_call_output":
                    if isinstance(item.get("output"), str):
                        found.append(Text(item, "output", "tool"))
                elif "content" in item:
                    _content(item, "content", _role(item), found)
                _in_turn(found, start, turn)
    _strings(body, "prompt", found)
    return found


def completion_texts(body: Any) -> list[Text]:
    """Every text an answer body (a parsed JSON value) gives the client."""
    found: list[Text] = []
    if not isinstance(body, dict):
        return found
    choices = body.get("choices")
    if isinstance(choices, list):  # chat.completion, text_completion
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            if isinstance(message, dict):
                _content(message, "content", "assistant", found)
            elif isinstance(choice.get("text"), str):
                found.append(Text(choice, "text", "assistant"))
    elif body.get("type") == "message" and isinstance(body.get("content"), list):
        _parts(body["content"], "assistant", found)  # an Anthropic message
    elif body.get("object") == "response" and isinstance(body.get("output"), list):
        for item in body["output"]:
            if isinstance(item, dict) and item.get("type") == "message":
                _content(item, "content", "assistant", found)
    return found


def withheld_message(rule: str) -> str:
    """What a withheld answer says in place of its text (streamed or not)."""
    return f"The answer was withheld by the gateway (rule {rule!r})."


def withhold(body: dict[str, Any], message: str) -> None:
    """Replace the answer in ``body`` by a refusal in its own format: what each API
    says of an answer its content filter stopped (OpenAI ``finish_reason:
    content_filter`` with the message's ``refusal``, Anthropic ``stop_reason:
    refusal``, Responses ``status: incomplete`` for ``content_filter``)."""
    choices = body.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            if isinstance(choice.get("message"), dict):
                choice["message"] = {"role": "assistant", "content": None, "refusal": message}
            else:
                choice["text"] = ""
            choice["finish_reason"] = "content_filter"
    elif body.get("type") == "message":
        body["content"] = [{"type": "text", "text": message}]
        body["stop_reason"] = "refusal"
        body["stop_sequence"] = None
    elif body.get("object") == "response":
        body["output"] = [
            {
                "type": "message",
                "id": "msg_withheld",
                "status": "incomplete",
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": message}],
            }
        ]
        body["status"] = "incomplete"
        body["incomplete_details"] = {"reason": "content_filter"}
