"""Authentication: passwords, access/refresh/API tokens, who is calling and in which role."""
