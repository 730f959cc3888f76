"""Export jobs: request, run on the queue, stream at PostgreSQL speed, download."""
