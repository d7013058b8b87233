"""Stand-ins for the third-party services: ServiceDesk Plus, OpenAI, Jaeger."""
