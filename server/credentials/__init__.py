"""Credentials: secrets for reaching targets, encrypted at rest and never shown again."""
