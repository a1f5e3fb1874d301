"""The RT client: the only code that talks to RT's REST2 API."""
