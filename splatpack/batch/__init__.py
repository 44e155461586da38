"""Many scenes at once on a Dask cluster: ``splatpack batch compress`` and ``splatpack batch train``.

- ``tasks``: the batch's tasks (one command line per input file or dataset folder) and where outputs go;
- ``records``: per-task records (input fingerprint, options, figures), the mark that a task is done;
- ``worker``: what a worker does with a task (child process, staging, atomic rename, record);
- ``lifeline``: the task's command dies with its worker (stdlib only: ``splatpack.cli`` imports it first);
- ``cluster``: a local cluster bound to 127.0.0.1 or an existing scheduler;
- ``engine``: skip finished tasks, submit the rest with retries, follow them, write ``batch.json``.
"""
