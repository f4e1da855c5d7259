"""The OAuth grant types this server supports (a light module: the CLI's help names them)."""

GRANT_TYPES = ("password", "client_credentials", "refresh_token")
