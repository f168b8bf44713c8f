"""Pure translations between the wire formats of AI APIs (no I/O).

The canonical format is an OpenAI chat-completions request / response / stream chunk as
plain dicts (:mod:`.chat` holds what the converters share).  Provider side, from the
canonical format to a provider's API and back:

- :mod:`.openai_chat_to_anthropic_messages`: Anthropic Messages (``/v1/messages``)
- :mod:`.openai_chat_to_gemini`: Gemini ``generateContent`` / ``streamGenerateContent``
  and ``batchEmbedContents`` (its schemas through :mod:`.json_schema_to_gemini_schema`)
- :mod:`.openai_chat_to_bedrock_converse`: Bedrock Converse / ConverseStream and the
  Titan text embeddings v2 ``invoke`` body

Front side, from a client-facing API to the canonical format and back:

- :mod:`.anthropic_messages_to_openai_chat`: an Anthropic Messages client
- :mod:`.openai_responses_to_openai_chat`: an OpenAI Responses client

docs/ai-wire-formats.md says what maps to what and what is lossy.

Additions to the shared design (nothing in it changed; these come on top):

- ``convert_request`` of every converter raises
  :class:`~quiver.ai.converters.chat.ConversionError` (a ``ValueError``) with a message
  for the client when a request cannot be expressed for the provider: answer 400.
- A provider ``StreamConverter.feed`` raises :class:`~quiver.ai.converters.chat.StreamError`
  (``kind``, ``message``) when the provider reports an error mid-stream.
- Provider ``usage`` may also hold ``prompt_tokens_details.cached_tokens``.
- ``convert_embeddings_response`` takes an optional ``encoding_format`` (``"float"`` or
  ``"base64"``).  Titan embeds one text per call: the Bedrock module adds
  ``embeddings_requests(body, model) -> list[dict]`` (one ``invoke`` body per input) and
  ``merge_embeddings_responses(bodies, model, encoding_format)``; its
  ``convert_embeddings_request`` / ``convert_embeddings_response`` handle one input.
- Front stream converters also expose ``usage`` (the chat usage) and ``finish_reason``;
  the Responses one keeps the final ``response`` object (for ``store``) after
  ``finish()``, whose last event is ``response.incomplete`` instead of
  ``response.completed`` when the answer was cut (length or content filter).
- A Gemini tool call id may end with ``_sig_<thought signature>`` (long);
  ``chat.bare_call_id`` strips it, as the Anthropic and Bedrock converters do.  OpenAI
  limits ids to 40 characters: a chat body passed through to OpenAI after a fallback
  from Gemini should go through it too.
- ``openai_responses_to_openai_chat.input_messages(body)``: the chat messages of a
  request's ``input`` alone; ``anthropic_messages_to_openai_chat.convert_request`` sets
  ``max_tokens`` (not ``max_completion_tokens``): OpenAI reasoning models want the
  latter, which the core may rename for them.
"""
