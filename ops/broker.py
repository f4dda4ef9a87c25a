"""The django-q2 broker as settings describe it: Redis when REDIS_URL is set, else the database (OrmQ).

Read from settings at call time (not django_q's import-time Conf) so a check reflects the running config.
"""

from __future__ import annotations

from django.conf import settings

_clients: dict[str, object] = {}
TIMEOUT_S = 1.0  # a health check must answer fast, even when Redis does not


def redis_url() -> str:
    return getattr(settings, "Q_CLUSTER", {}).get("redis") or ""


def redis_client(url: str):
    import redis

    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    return _clients[url]


def queue_key() -> str:
    conf = getattr(settings, "Q_CLUSTER", {})
    return conf.get("cluster_name") or conf.get("name") or "default"


def broker_name() -> str:
    return "redis" if redis_url() else "orm"


def broker_ping() -> None:
    """Raise when the broker cannot take a task."""
    url = redis_url()
    if url:
        redis_client(url).ping()
    else:
        from django_q.models import OrmQ

        OrmQ.objects.exists()  # the queue table is there and readable


def queue_depth() -> int:
    """Tasks waiting for a worker (the django-q2 Redis list, or unlocked OrmQ rows)."""
    url = redis_url()
    if url:
        return int(redis_client(url).llen(f"django_q:{queue_key()}:q"))
    from django.utils import timezone
    from django_q.models import OrmQ

    return OrmQ.objects.filter(lock__lte=timezone.now()).count()
