"""DRF authentication by the hashed API tokens of `tenants.models.ApiToken`: `Authorization: Token <key>`."""

from rest_framework import authentication, exceptions

from tenants.selectors import api_token_find
from tenants.services import api_token_touch


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing and 401 challenge, with the key looked up by its hash."""

    def authenticate_credentials(self, key):
        token = api_token_find(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        api_token_touch(token=token)
        return token.user, token
