"""The front APIs of an AI route, one module each: OpenAI chat completions
(:mod:`.chat`), responses (:mod:`.responses`), embeddings (:mod:`.embeddings`) and
models (:mod:`.models`); Anthropic messages and token counting (:mod:`.messages`)."""
