"""Local Pipedrive simulator; see app.py for what it serves and its control API."""
