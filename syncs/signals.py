"""What syncs announces to the apps above it (alerts), so that it never imports them."""

from django.dispatch import Signal

# A flow's run ended (any status). Sent with `run`; receivers read the flow and its connections.
run_finished = Signal()
