"""The AI gateway: one OpenAI- and Anthropic-compatible endpoint in front of many providers.

- ``converters/``: pure translations between wire formats, named ``<from>_to_<to>``; the
  canonical format is an OpenAI chat-completions request or response as plain dicts.
- ``transports/``: incremental stream codecs (server-sent events, AWS event stream).
- ``sigv4``: the AWS Signature Version 4 signer Bedrock calls need.
"""
