from tests.factories import (  # noqa: F401 — fixtures
    _clear_cache,
    connection,
    other_connection,
    other_owner,
    owner,
    owner_api,
    owner_client,
    viewer,
    viewer_api,
    viewer_client,
)
