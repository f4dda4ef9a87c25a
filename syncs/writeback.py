"""Write-back of Pipedrive deal events to the ERP (placeholder until the write-back itself lands)."""


def deal_event_handle(*, event):
    return None
