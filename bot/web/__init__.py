"""Paved as a service: the webhook receiver (`paved serve`) and the queue consumers (`paved worker`).

`app` builds the FastAPI app from its collaborators, `serve` runs the commands, `cli` adds them to the
`paved` command line, `jobs` composes the handlers' collaborators and runs deliveries and reconcile, `logs`
sets up log output, `catalogue` serves the web catalogue's pages and `signin` guards them with GitHub
sign-in. Only this package imports FastAPI and uvicorn.
"""
