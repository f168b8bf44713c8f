"""The ``ai`` target type: an AI route answered inside the worker.

Each route with ``ai: {...}`` compiles into a target of this type (see
:func:`quiver.config.ai.expand`); requests under the route's paths are dispatched by
the end of their path to a front API:

=============================  ======  ==========================================
path (after the route prefix)  method  front
=============================  ======  ==========================================
``/chat/completions``          POST    OpenAI chat completions (:mod:`.fronts.chat`)
``/embeddings``                POST    OpenAI embeddings
``/models``, ``/models/{id}``  GET     OpenAI models
``/messages``                  POST    Anthropic messages (:mod:`.fronts.messages`)
``/messages/count_tokens``     POST    Anthropic token counting
``/responses``                 POST    OpenAI responses (:mod:`.fronts.responses`)
``/responses/{id}``            GET     a stored response; DELETE forgets it
=============================  ======  ==========================================

Whatever goes wrong is answered in the shape of the front's API (:mod:`.errors`),
the gateway's own refusals on the route too (:meth:`AITarget.error_answer`): the
shape follows the path, Anthropic's for ``/messages`` and what lies under it,
OpenAI's for everything else.  A prompt API's route keeps problem documents: its
clients are plain REST clients, not an SDK of either API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import Field

from quiver.ai.errors import AIError, InvalidRequest, Shape, from_http_error, render
from quiver.ai.fronts.chat import chat_completions
from quiver.ai.fronts.embeddings import embeddings
from quiver.ai.fronts.messages import count_tokens, messages
from quiver.ai.fronts.models import list_models, retrieve_model
from quiver.ai.fronts.responses import delete, responses, retrieve
from quiver.ai.gateway import Call, Gateway, error_response
from quiver.ai.prompt_api import PromptAPI
from quiver.config.ai import AI_TARGET_TYPE, AIConfig
from quiver.config.ai_prompt import AIPrompt
from quiver.errors import Answer, HTTPError
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType

Front = Callable[[Gateway, PluginRequest, Call], Awaitable[Response]]

#: POST fronts by the end of the path, the shape of their errors, and the operation
#: the records name
_FRONTS: tuple[tuple[bytes, Front, Shape, str], ...] = (
    (b"/chat/completions", chat_completions, "openai", "chat"),
    (b"/messages/count_tokens", count_tokens, "anthropic", "count_tokens"),
    (b"/messages", messages, "anthropic", "messages"),
    (b"/embeddings", embeddings, "openai", "embeddings"),
    (b"/responses", responses, "openai", "responses"),
)
_NO_STORE = (b"Cache-Control", b"no-store")


def shape_of(path: bytes) -> Shape:
    """The error shape of a request to ``path``: Anthropic's for ``.../messages`` and
    the paths under it (``/messages/count_tokens``...), OpenAI's otherwise."""
    path = path.partition(b"?")[0].rstrip(b"/")
    if path.endswith(b"/messages") or b"/messages/" in path:
        return "anthropic"
    return "openai"


class AITargetOptions(TargetOptions):
    route: str = Field(description="The AI route this target answers.")
    models: list[str] | None = Field(None, description="The models it serves; all when unset.")
    ai: AIConfig = Field(description="The `ai` section of the config.")
    prompt: AIPrompt | None = Field(None, description="The route's prompt API, if it is one.")


class AITarget(TargetType[AITargetOptions]):
    """Answers the OpenAI- and Anthropic-compatible APIs of an AI route."""

    name = AI_TARGET_TYPE
    Options = AITargetOptions
    listed = False  # (routes with `ai` compile into it; nobody writes it)

    def __init__(self, options: AITargetOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        self.gateway = Gateway(options.ai, options.models, context)
        self.prompt_api = (
            PromptAPI(options.prompt, options.route, self.gateway) if options.prompt else None
        )

    def handle(self, request: PluginRequest) -> Response | Awaitable[Response]:
        if self.prompt_api is not None:
            return self.prompt_api.handle(request)
        path = request.raw_path.partition(b"?")[0].rstrip(b"/")
        method = request.method
        if method == b"POST":
            for suffix, front, shape, operation in _FRONTS:
                if path.endswith(suffix):
                    return self._answer(front, shape, operation, request)
        elif method == b"GET":
            try:
                if path.endswith(b"/models"):
                    return list_models(self.gateway)
                head, _, name = path.rpartition(b"/")
                if head.endswith(b"/models") and name:
                    return retrieve_model(self.gateway, name.decode("latin-1"))
            except AIError as exc:
                return error_response(exc, "openai", request.rid)
            stored = self._stored_response(path)
            if stored is not None:
                return self._answer_stored(retrieve, stored, request)
        elif method == b"DELETE":
            stored = self._stored_response(path)
            if stored is not None:
                return self._answer_stored(delete, stored, request)
        error = InvalidRequest(
            f"Unknown request URL: {method.decode('latin-1')} {path.decode('latin-1')}",
            status=404,
            code="unknown_url",
        )
        return error_response(error, shape_of(path), request.rid)

    def error_answer(self, request: PluginRequest, error: HTTPError) -> Answer | None:
        """A refusal of the gateway on this route (key-auth's 401, an ACL's 403, a
        rate limit's 429, a guardrail's 400, a body too large, the read timeout's
        504...) in the shape of the front the client called, with every header field
        it carries and the request id; None (a problem document) on a prompt API."""
        if self.prompt_api is not None:
            return None
        shaped = from_http_error(error)
        status, headers, body = render(shaped, shape_of(request.raw_path), request.rid)
        fields = (*headers[1:], _NO_STORE)  # (render's first field is the Content-Type)
        return Answer(status, headers=fields, body=body, content_type=b"application/json")

    @staticmethod
    def _stored_response(path: bytes) -> str | None:
        """The id of ``.../responses/{id}``, if the path is one."""
        head, _, name = path.rpartition(b"/")
        if head.endswith(b"/responses") and name:
            return name.decode("latin-1")
        return None

    async def _answer_stored(
        self,
        action: Callable[[Gateway, str], Awaitable[Response]],
        identifier: str,
        request: PluginRequest,
    ) -> Response:
        try:
            return await action(self.gateway, identifier)
        except AIError as exc:
            return error_response(exc, "openai", request.rid)

    async def _answer(
        self, front: Front, shape: Shape, operation: str, request: PluginRequest
    ) -> Response:
        call = Call(request, "")
        call.info["operation"] = operation
        try:
            return await front(self.gateway, request, call)
        except (AIError, HTTPError) as exc:  # (a budget's or a limit's refusal too)
            return error_response(exc, shape, request.rid, call)
