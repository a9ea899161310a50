"""Paved as a service: the webhook receiver (`paved serve`) and the queue consumers (`paved worker`).

`app` builds the FastAPI app from its collaborators, `serve` runs the commands, `cli` adds them to the
`paved` command line, `jobs` holds the job and periodic task used until Paved's handlers are plugged in,
and `logs` sets up log output. Only this package imports FastAPI and uvicorn.
"""
