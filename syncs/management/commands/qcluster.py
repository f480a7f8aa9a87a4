"""`manage.py qcluster`: django-q2's command, running its cluster with a prompt stop (syncs.cluster).

This app comes before django_q in INSTALLED_APPS, so that this command is the one `qcluster` runs.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django_q.management.commands.qcluster import Command as DjangoQCommand

from syncs.cluster import STOP_SECONDS, PromptCluster


class Command(DjangoQCommand):
    help = (
        "Starts the django-q2 cluster (the schedules and the queued syncs). SIGTERM or SIGINT (Ctrl-C) stops it "
        f"within {STOP_SECONDS:.0f} s: a running sync is recorded interrupted with its checkpoint, the next one "
        "carries on from it, and queued tasks stay queued."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SECRET_KEY  # noqa: B018 - the cluster signs its tasks: fail early without a key, as django-q2 does
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = PromptCluster()
        cluster.start()
        if options.get("run_once", False):
            cluster.stop()
