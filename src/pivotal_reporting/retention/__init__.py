"""Retention: expire export files, delete old job rows and orphan files, audit each sweep."""
