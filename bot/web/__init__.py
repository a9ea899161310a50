"""Paved as a service: the webhook receiver (`paved serve`) and the queue consumers (`paved worker`).

`app` builds the FastAPI app from its collaborators, `serve` runs the commands, `commands` adds them to the
`paved` command line, `jobs` runs deliveries and reconcile (with what `bot.composition` builds), `logs`
sets up log output, `catalogue` serves the web catalogue's pages and `signin` guards them with GitHub
sign-in; `setup` registers Paved's GitHub App (`paved setup`). Only this package imports FastAPI and uvicorn.
"""
