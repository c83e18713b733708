"""The control plane (docs/architecture.md, "Control plane"): a FastAPI service that
accepts specs, runs them on Ray through the Jobs API, keeps their history in SQLite and shows
them on a web dashboard.

Modules, each with one job:
  config      the service's settings (storage roots, token, Ray address, limits)
  store       the SQLite job store: jobs, state transitions, specs; versioned schema
  storage     which paths a spec may read and write (the configured storage roots)
  submission  request body -> a validated spec ready to run, or the problems with their lines
  security    bearer-token check and the request size limit
  launcher    the Ray Jobs API client: submit, stop, status, logs
  ray_head    the local Ray head the service starts and owns when no cluster is given
  progress    per-stage progress of a job, read from its manifests
  reconciler  keeps the store in step with Ray (also after a restart of the service)
  metrics     Prometheus text for /metrics
  routes      the HTTP API
  web         the dashboard (static files shipped in the package)
  app, server create_app(config) and serve()/main()

The API never imports a stage module or the runner: it validates with `pipeline.spec` and
reads job outputs through `JobLayout` and `pipeline.report`.
"""
