"""Stream framings of AI providers: server-sent events and the AWS event stream."""
