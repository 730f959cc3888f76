"""Token verification, the Principal and permission checks."""
