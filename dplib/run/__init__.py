"""Running the grids: what the grid operator uses, and nothing a notebook or a researcher's
training code needs.

    plan     a params file read and expanded into the runs of its grid
    folder   a run's folder, the one owner of its file names, and its state
    claims   one process per run, across runners and hosts
    execute  one run executed by papermill, bounded in time, its end recorded
    executors  where runs execute: one interface, local and Slurm its implementations, your own registered
    grid     runs a grid through an executor, status and collect (with the training curves)
    schema   what a params file may say, checked before anything runs
    slurm    the Slurm request checked, the queue asked, job arrays through submitit
    cli      `dplib grid ...` and `dplib data ...` (also `python -m dplib`)
    demo     `make demo`
"""
