"""Accounts: users, organizations and memberships (who belongs where, in which role)."""
