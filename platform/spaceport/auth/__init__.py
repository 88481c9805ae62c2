"""Authentication: access tokens and the admin bootstrap."""
