"""What connectors announces to the apps above it (alerts), so that it never imports them."""

from django.dispatch import Signal

# A connection was tested (portal, API, wizard); its status says what was found. Sent with `connection`.
connection_tested = Signal()
