"""Pure translations between the wire formats of AI APIs (no I/O).

The canonical format is an OpenAI chat-completions request / response / stream chunk as
plain dicts (:mod:`.chat` holds what they share).  Provider side, from the canonical
format to a provider's API and back:

- :mod:`.openai_chat_to_anthropic_messages`: Anthropic Messages (``/v1/messages``)
- :mod:`.openai_chat_to_gemini`: Gemini ``generateContent`` / ``streamGenerateContent``
  and ``batchEmbedContents``
- :mod:`.openai_chat_to_bedrock_converse`: Bedrock Converse / ConverseStream and the
  Titan text embeddings v2 ``invoke`` body

Front side, from a client-facing API to the canonical format and back:

- :mod:`.anthropic_messages_to_openai_chat`: an Anthropic Messages client
- :mod:`.openai_responses_to_openai_chat`: an OpenAI Responses client
"""
