"""The django-q2 cluster runs against the real database and executes tasks end to end."""

import pytest
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from tests.processes import start_cluster, stop, wait_for


@pytest.mark.django_db(transaction=True)
def test_cluster_runs_a_task_end_to_end():
    cluster = start_cluster()
    task = None
    try:
        task_id = async_task("syncs.tasks.health_task", 41)
        task = wait_for(lambda: Task.objects.filter(id=task_id).first(), timeout=60, message="task result")
    except AssertionError:
        pass
    finally:
        output = stop(cluster)
    assert task is not None, output
    assert task.success, output
    assert task.result == {"echo": 41, "database": "postgresql"}


@pytest.mark.django_db
def test_migrate_installs_the_dispatcher_schedule_once():
    from syncs.scheduler import TICK_NAME, schedule_ensure

    schedule_ensure()
    schedules = Schedule.objects.filter(name=TICK_NAME)
    assert schedules.count() == 1
    assert schedules.get().func == "syncs.tasks.dispatcher_tick_task"
    assert schedules.get().minutes == 1
