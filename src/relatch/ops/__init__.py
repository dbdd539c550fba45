"""Operators' endpoints: /health/live, /health/ready and /metrics (issue 22).

Above every app in the import order: readiness and the scrape read the database, the file
storage, the task queue and the mail queue of the apps below.

How /metrics gives totals across processes. ``relatch serve`` runs gunicorn with several web
processes (RELATCH_WEB_WORKERS) and a worker process; a scrape reaches one web process, whose
own counts are a fraction of the host's. prometheus-client's multiprocess mode fixes that:
``relatch serve`` sets PROMETHEUS_MULTIPROC_DIR to ``<data dir>/metrics`` (emptied at each
start, so a restart begins from zero, which Prometheus reads as a counter reset) before any
child starts; every process then keeps its counters and histograms in memory-mapped files
there, named by its pid, and a scrape sums the files of every process that ever ran, the dead
included, so a restarted gunicorn worker's requests are not lost from the totals. gunicorn's
``child_exit`` hook (relatch.ops.gunicorn_hooks) tells the library a worker died, which
matters only for live gauges (none are kept in files now). The figures read from the database
(task and mail queues) are gauges computed at scrape time (relatch.ops.collectors): they are
the same whichever process or host answers. Without PROMETHEUS_MULTIPROC_DIR (tests,
``relatch.wsgi`` under a server of one's own) the scrape shows the answering process only.
"""
