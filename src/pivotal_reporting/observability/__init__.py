"""Operating the service: structured logs, request ids, HTTP metrics, ``/metrics``."""
