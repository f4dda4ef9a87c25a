"""The onboarding wizard: choose the ERP, connect both systems, choose flows, map fields, see the
estimate, enable. Built on the connectors and syncs services; the slow parts (tests, field lists,
previews, estimates) run as django-q2 tasks the pages poll."""
