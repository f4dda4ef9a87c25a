"""Every API list: `?limit=&offset=` (both optional), answered as `{count, next, previous, results}`.
Values that are not whole numbers in range are refused with 400, never silently replaced."""

from __future__ import annotations

import re

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 500
WHOLE_NUMBER = re.compile(r"-?[0-9]+")


class StrictLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = MAX_LIMIT

    def _param(self, request, name: str, *, minimum: int, maximum: int | None, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not WHOLE_NUMBER.fullmatch(raw):  # int() would also take " 5", "+5" and "5_0"
            raise exceptions.ValidationError({name: [f"'{raw}' is not a whole number."]})
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise exceptions.ValidationError({name: [f"Must be {bound}."]})
        return value

    def get_limit(self, request):
        return self._param(
            request, self.limit_query_param, minimum=1, maximum=self.max_limit, default=self.default_limit
        )

    def get_offset(self, request):
        return self._param(request, self.offset_query_param, minimum=0, maximum=None, default=0)

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.limit_query_param:
                param["schema"].update(
                    {"minimum": 1, "maximum": self.max_limit, "default": self.default_limit}
                )
            elif param["name"] == self.offset_query_param:
                param["schema"].update({"minimum": 0, "default": 0})
        return params
