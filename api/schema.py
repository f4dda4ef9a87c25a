"""OpenAPI generation: every operation documents the error answers it can give, in the one error
body shape (api/errors.py), so clients and the contract test (schemathesis) see every status code."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

from api.errors import ErrorBody

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
EXPLICIT = {
    "409": "Conflicts with the current state (a run in progress, nothing to replay, the last owner): "
    "`detail` says what.",
    "429": "Too many requests: retry after the `Retry-After` header.",
}


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = {
            "401": "Missing or invalid token.",
            "403": "Not a member of an organisation, or a viewer trying to change something.",
        }
        if self.method in WRITE_METHODS or self.method == "GET" and self._has_query_parameters():
            errors["400"] = "Invalid input: `fields` says which."
        if "{" in self.path:
            errors["404"] = "No such object in your organisation."
        for code, description in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorBody, code, direction=direction)
                responses[code]["description"] = description
        for code, response in responses.items():  # explicitly declared error codes get the same body
            if code.startswith(("4", "5")) and "content" not in response:
                responses[code] = self._get_response_for_code(ErrorBody, code, direction=direction)
                responses[code]["description"] = EXPLICIT.get(code, "Error: `detail` says what went wrong.")
        return responses

    def _has_query_parameters(self) -> bool:
        return any(p.get("in") == "query" for p in self._get_parameters())
