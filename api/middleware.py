"""Answers under /api/ that DRF never saw (an URL no route matches, a crash) still get the one JSON
error body, not Django's HTML page."""

from django.http import JsonResponse

CODES = {404: "not_found", 405: "method_not_allowed", 403: "permission_denied", 400: "invalid"}
DETAILS = {
    404: "No such API endpoint or object.",
    405: "Method not allowed.",
    403: "Not allowed.",
    400: "Bad request.",
}


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            body = {
                "detail": DETAILS.get(status, "The server failed to answer; support has been notified."),
                "code": CODES.get(status, "server_error"),
                "fields": {},
            }
            return JsonResponse(body, status=status)
        return response
