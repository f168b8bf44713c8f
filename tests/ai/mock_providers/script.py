"""What a mock model says: steering keywords, answers, tool calls and exact usage.

Every provider mock reduces its request to a :class:`Prompt` (the steering text, the
words it counts, the tools offered) and asks :func:`plan` what to answer.  The rules,
the same for every provider:

- the steering text is the last user message's text, or, when the conversation ends
  with tool results and no words beside them, the text of those results (the model then
  answers, never calls;
  a result that is an object with one string member reads as that string);
- plain text → ``Hello from <provider> <model>: <first 40 characters>``, streamed one
  word per piece;
- ``CALL_TOOL`` with tools offered → one call to the first tool with
  ``{"location": "Paris"}``; ``CALL_TWO_TOOLS`` → two parallel calls (the second to the
  second tool when there is one, ``{"location": "London"}``); a forced tool choice
  calls that tool, ``required``/``any`` the first, ``none`` never calls;
- ``FAIL_429`` / ``FAIL_500`` / ``FAIL_CONTEXT`` → that failure in the provider's shape
  (``FAIL_429@bedrock`` or ``FAIL_429@<model>``: only that provider type or model fails,
  so a fallback elsewhere can answer);
  ``SLOW_FIRST 300ms`` → the first token after that delay; ``REFUSE`` → an empty answer
  stopped by the provider's content filter (content_filter, refusal, SAFETY,
  content_filtered); ``CUT_STREAM`` → the
  connection dropped after two pieces; ``FAIL_MIDSTREAM`` → after two pieces, the
  provider's in-stream error (an OpenAI ``error`` chunk, Anthropic's ``error`` event,
  Gemini's error object, a Bedrock exception frame) and the end of the stream;
- with a JSON Schema asked for (natively, or written as JSON in the system prompt) the
  answer is a minimal instance of it; with a JSON object asked for (natively, or by a
  system prompt saying ``JSON``) it is ``{"answer": <the text answer>}``;
- ``NO_USAGE`` → an OpenAI-like answer without any usage, as some compatible servers
  give (a gateway must count it itself); ``NULL_USAGE`` → an OpenAI-like stream asked
  for its usage whose chunks carry ``usage: null`` but whose final usage chunk never
  comes;
- prompt tokens = whitespace-separated words of every text the request carries
  (messages, system, tool calls and results, tool names, descriptions and schemas as
  JSON); completion tokens = words of the answer (of ``name arguments`` per tool call);
  an output cap smaller than that truncates the answer to the cap (stop: length).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

Failure = Literal["429", "500", "context"]
FAILURE = re.compile(r"FAIL_(429|500|CONTEXT)(?:@(\S+))?")
SLOW = re.compile(r"SLOW_FIRST\s*(\d+)\s*ms")
DEFAULT_SLOW = 0.5
ECHO = 40
ARGUMENTS = ({"location": "Paris"}, {"location": "London"})


@dataclass
class Prompt:
    """What a provider's request says, reduced to what the mock acts on."""

    provider: str
    model: str
    steering: str = ""  # the text the rules read
    after_tool: bool = False  # the conversation ends with tool results
    texts: list[str] = field(default_factory=list)  # every text counted as prompt
    tools: list[str] = field(default_factory=list)  # tool names offered, in order
    choice: str = "auto"  # auto | none | required | the name of a forced tool
    parallel: bool = True  # parallel tool calls allowed
    schema: dict[str, Any] | None = None  # a JSON Schema the answer must follow
    json_object: bool = False  # any JSON object will do
    max_output: int | None = None


@dataclass
class ToolCall:
    name: str
    arguments: str  # JSON text

    def fragments(self) -> list[str]:
        """The arguments in three pieces, as models stream them."""
        text, third = self.arguments, max(1, len(self.arguments) // 3)
        return [text[:third], text[third : 2 * third], text[2 * third :]]


@dataclass
class Plan:
    """The answer to give."""

    failure: Failure | None = None
    delay: float = 0.0
    cut: bool = False
    broken: bool = False  # the stream ends early with the provider's in-stream error
    no_usage: bool = False  # the answer says nothing of usage (servers that count nothing)
    null_usage: bool = False  # a stream's chunks say ``usage: null``, and nothing more
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    truncated: bool = False
    refused: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def pieces(self) -> list[str]:
        """The answer text one word (with its trailing space) per piece."""
        return re.findall(r"\S+\s*", self.text) or [self.text]


def words(*texts: str) -> int:
    return sum(len(text.split()) for text in texts)


def plan(prompt: Prompt) -> Plan:
    steering = prompt.steering
    result = Plan(prompt_tokens=words(*prompt.texts))
    result.failure = failure(steering, prompt.provider, prompt.model)
    if (slow := SLOW.search(steering)) is not None:
        result.delay = int(slow.group(1)) / 1000
    elif "SLOW_FIRST" in steering:
        result.delay = DEFAULT_SLOW
    result.cut = "CUT_STREAM" in steering
    result.broken = "FAIL_MIDSTREAM" in steering
    result.no_usage = "NO_USAGE" in steering
    result.null_usage = "NULL_USAGE" in steering
    if "REFUSE" in steering and not prompt.after_tool:
        result.refused = True
        return result
    calls = _tool_calls(prompt)
    if calls:
        result.tool_calls = calls
        result.completion_tokens = sum(words(c.name, c.arguments) for c in calls)
        return result
    if prompt.schema is not None:
        result.text = json.dumps(instance(prompt.schema, prompt.schema, steering[:ECHO]))
    else:
        result.text = f"Hello from {prompt.provider} {prompt.model}: {steering[:ECHO]}"
        if prompt.json_object:
            result.text = json.dumps({"answer": result.text})
    count = words(result.text)
    if prompt.max_output is not None and count > prompt.max_output:
        result.text = " ".join(result.text.split()[: prompt.max_output])
        result.truncated = True
        count = prompt.max_output
    result.completion_tokens = count
    return result


def failure(text: str, provider: str, model: str) -> Failure | None:
    """The failure ``text`` asks of this provider and model, if any."""
    for match in FAILURE.finditer(text):
        if match.group(2) in (None, provider, model):
            code = match.group(1)
            return "context" if code == "CONTEXT" else "429" if code == "429" else "500"
    return None


def _tool_calls(prompt: Prompt) -> list[ToolCall]:
    if prompt.after_tool or not prompt.tools or prompt.choice == "none":
        return []
    names: list[str] = []
    if prompt.choice not in ("auto", "required"):
        names = [prompt.choice]
    elif "CALL_TWO_TOOLS" in prompt.steering:
        names = [prompt.tools[0], prompt.tools[1 if len(prompt.tools) > 1 else 0]]
    elif "CALL_TOOL" in prompt.steering or prompt.choice == "required":
        names = [prompt.tools[0]]
    if not prompt.parallel:
        names = names[:1]
    return [ToolCall(name, json.dumps(ARGUMENTS[i])) for i, name in enumerate(names)]


def instance(schema: Any, root: dict[str, Any], text: str) -> Any:
    """A minimal value valid against ``schema`` (the JSON Schema subset models accept)."""
    if not isinstance(schema, dict):
        return text
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return instance(target, root, text)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return instance(schema[key][0], root, text)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: instance(sub, root, text) for name, sub in props.items()}
    if kind == "array":
        return [instance(schema.get("items", {}), root, text)] * max(1, schema.get("minItems", 1))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text or "text"


def schema_in(system: str) -> dict[str, Any] | None:
    """A JSON Schema written in a system prompt: the first JSON object with properties."""
    start = system.find("{")
    while start != -1:
        depth = 0
        for end in range(start, len(system)):
            depth += {"{": 1, "}": -1}.get(system[end], 0)
            if depth == 0:
                try:
                    found = json.loads(system[start : end + 1])
                except ValueError:
                    break
                if isinstance(found, dict):
                    inner = found.get("schema", found)
                    if isinstance(inner, dict) and ("properties" in inner or "type" in inner):
                        return inner
                break
        start = system.find("{", start + 1)
    return None


def json_asked_in(prompt: Prompt, system: str) -> None:
    """What a system prompt asks of the answer's form, for a provider without a native
    field: a JSON Schema written in it, or else JSON at all when it says ``JSON``."""
    prompt.schema = schema_in(system)
    prompt.json_object = prompt.schema is None and "JSON" in system


def vector(text: str, dimensions: int) -> list[float]:
    """A deterministic embedding whose values are exact in float32 (k / 128)."""
    digest = b""
    counter = 0
    while len(digest) < dimensions:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    return [(byte - 128) / 128 for byte in digest[:dimensions]]


def base64_vector(values: list[float]) -> str:
    """OpenAI's ``encoding_format: base64``: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def ident(seed: bytes, length: int, prefix: str = "") -> str:
    """A deterministic id of ``length`` letters and digits derived from ``seed``."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    number = int.from_bytes(hashlib.sha256(seed).digest(), "big")
    chars = []
    for _ in range(length):
        number, rest = divmod(number, len(alphabet))
        chars.append(alphabet[rest])
    return prefix + "".join(chars)
