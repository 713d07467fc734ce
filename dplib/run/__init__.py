"""Running the grids: what the grid operator uses, and nothing a notebook or a researcher's
training code needs.

    plan     a params file read and expanded into the runs of its grid
    folder   a run's folder, the one owner of its file names, and its state
    claims   one process per run, across runners and hosts
    execute  one run executed by papermill, bounded in time, its end recorded
    grid     the local and Slurm executors, status and collect
    slurm    the Slurm request checked, the queue asked, job arrays through submitit
    cli      `dplib grid ...` and `dplib data ...` (also `python -m dplib`)
    demo     `make demo`
"""
