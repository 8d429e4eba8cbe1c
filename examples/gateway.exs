# A LiveCov gateway configuration: `mix live_cov.gateway --config examples/gateway.exs`
# (or `scripts/gateway.sh examples/gateway.exs`). The file is Elixir; its value is a keyword
# list. See LiveCov.Gateway.Config for every option.
[
  # Where the gateway keeps what it pulled (restarts lose nothing) and finished runs.
  data_dir: "/tmp/live_cov_gateway",

  # The dashboard and API. Off loopback a token is required; it guards the POST routes
  # (POST /runs, POST /runs/:id/finish, POST /api/pull) and the snapshot download.
  bind: "127.0.0.1",
  port: 9570,
  # token: {:system, "LIVE_COV_GATEWAY_TOKEN"},

  # Pull every 10 s; each pull may take 5 s; a failing source is retried after
  # 10 s, 20 s, 40 s, ... at most 5 min.
  interval: 10_000,
  timeout: 5_000,
  backoff: 10_000,
  max_backoff: 300_000,

  # Agents (LiveCov.Agent inside instrumented nodes). The name defaults to the URL.
  agents: [
    [
      name: "api-1",
      url: "http://127.0.0.1:9568",
      service: "api",
      token: {:system, "LIVE_COV_AGENT_TOKEN"}
    ],
    [
      name: "api-2",
      url: "http://127.0.0.1:9569",
      service: "api",
      token: {:system, "LIVE_COV_AGENT_TOKEN"}
    ]
  ],

  # Distributed-Erlang nodes running LiveCov, pulled over :erpc (the gateway then needs a
  # node name and the cookie).
  # nodes: [[node: :"worker@127.0.0.1", service: "worker"]],
  # distribution: [name: "live_cov_gateway@127.0.0.1", cookie: "the-cluster-cookie"],

  # Source files the source view may show: a directory (sources compiled there), or
  # {compile-time prefix, local checkout} when the release was built elsewhere.
  source_roots: [{"/build/my_app", "/srv/checkouts/my_app"}],

  # Report options (LiveCov.Stats): display names relative to root, ignored modules, ...
  report_opts: [root: "/srv/checkouts/my_app"],

  # What POST /runs/:id/finish publishes, per service.
  publishers: [
    # <dir>/<run id>/<service>/{lcov.info,cobertura.xml,coverage.html,coverage.json}
    [type: :directory, dir: "/tmp/live_cov_reports", formats: [:lcov, :cobertura, :html, :json]]
    # Coveralls-format JSON POSTed with retries (options of LiveCov.Publish.publish/2):
    # [type: :coveralls, url: "https://cov.example.com/api/v1/jobs",
    #  headers: [{"authorization", "Bearer ..."}], retries: 3]
  ]
]
