defmodule LiveCov.Agent do
  @moduledoc """
  An HTTP agent inside an instrumented node, built on OTP's `:inets` httpd (no dependencies),
  for a gateway, CI jobs or Prometheus to drive and read coverage remotely.

  Off unless configured:

      # config/runtime.exs of the release
      config :live_cov, :agent,
        port: 9568,                                   # default
        bind: "127.0.0.1",                            # default: loopback only
        token: System.fetch_env!("LIVE_COV_AGENT_TOKEN")

  or started by hand (e.g. from a remote console):

      {:ok, info} = LiveCov.Agent.start(port: 9568, token: "a secret of 16+ bytes")
      info.url   #=> "http://127.0.0.1:9568"
      LiveCov.Agent.stop()

  Every route except `GET /health` needs `Authorization: Bearer <token>` (compared in
  constant time); without a token the agent refuses to start, unless `auth: false` is given
  explicitly and it binds a loopback address. See `LiveCov.Agent.Config` for every option.

  ## Routes

  | method & path | answer |
  |---|---|
  | `GET /health` | `{"status":"ok","node":"..."}` (no token needed) |
  | `GET /status` | node, mode, instrumented applications and modules (md5, sites), git commit, versions (`LiveCov.Agent.Status`) |
  | `POST /instrument` | body `{"application":"my_app"}` or `{"applications":[...]}` (+ `"mode":"coverage"`): the `LiveCov.start/2` summary |
  | `POST /stop` | body `{"application":"my_app"}` or none (all): restored / still running / failed modules |
  | `GET /coverage` | total and per-file `coverage, sloc, hits, misses` |
  | `GET /report/:format` | `html`, `lcov`, `cobertura`, `coveralls`, `json`, `terminal`, `annotated` |
  | `GET /snapshot` | `LiveCov.Snapshot` binary; `?reset=true` dumps and resets in one step |
  | `POST /reset` | `{"ok":true}` |
  | `GET /metrics` | Prometheus text format (`LiveCov.Agent.Metrics`) |

  `/coverage` and `/report/:format` take `compile_root` and `runtime_root` (together) and
  `root` query parameters (defaults from the `:report_opts` option). Errors are 4xx/5xx with
  `{"error": {"kind": "...", "message": "..."}}`.

  ## Robustness

  Each request runs in its own httpd process and every handler is wrapped: a crash answers
  500 and affects nothing else. Reports, coverage, status and metrics are coalesced (many
  identical concurrent requests share one computation), bounded (`:max_concurrent`) and run
  at low process priority so the application keeps the schedulers; large counter tables are
  read on dirty schedulers; the connection processes themselves run at low priority. Clients
  that send `Accept-Encoding: gzip` get reports, metrics and snapshots compressed (once per
  shared computation). Bodies over `:max_body_bytes` are refused with 413 before they are
  read, connections over `:max_clients` get 503. The agent runs under its own
  supervisor, which gives up on an agent that keeps crashing rather than take LiveCov down.
  """

  require Logger

  alias LiveCov.Agent.{Config, Server}

  @doc """
  Starts the agent with `opts` (see `LiveCov.Agent.Config`). Returns `{:ok, info}` (as
  `config/0`) or `{:error, {kind, message}}`: `:invalid_agent_config` (e.g. no token),
  `:listen_failed` (port in use, ...), `:already_started`.
  """
  @spec start(keyword) :: {:ok, map} | {:error, {atom, String.t()}}
  def start(opts \\ []) do
    with {:ok, _} <- Application.ensure_all_started(:live_cov),
         {:ok, config} <- Config.new(opts) do
      start_config(config)
    end
  end

  defp start_config(config) do
    case DynamicSupervisor.start_child(LiveCov.Agent.Supervisor, Server.child_spec(config)) do
      {:ok, _pid} ->
        {:ok, config()}

      {:error, {:already_started, _}} ->
        {:error,
         {:already_started,
          "the LiveCov agent already runs at #{config()[:url]}; call LiveCov.Agent.stop() first"}}

      {:error, {:shutdown, {kind, message}}} when is_atom(kind) and is_binary(message) ->
        {:error, {kind, message}}

      {:error, other} ->
        {:error, {:agent_start_failed, "the LiveCov agent could not start: #{inspect(other)}"}}
    end
  end

  @doc "Stops the agent (its listener closes). `:ok`, or an error when it is not running."
  @spec stop() :: :ok | {:error, {atom, String.t()}}
  def stop do
    with pid when is_pid(pid) <- Process.whereis(Server),
         :ok <- DynamicSupervisor.terminate_child(LiveCov.Agent.Supervisor, pid) do
      :ok
    else
      _ -> {:error, {:not_running, "the LiveCov agent is not running"}}
    end
  end

  @doc """
  The running agent's settings (never the token) and its `url`, or `nil` when it is not
  running: `%{url:, bind:, port:, auth:, max_body_bytes:, max_clients:, ...}`.
  """
  @spec config() :: map | nil
  def config, do: Server.info()

  @doc "The agent's base URL, e.g. `\"http://127.0.0.1:9568\"`, or nil."
  @spec url() :: String.t() | nil
  def url, do: (c = config()) && c.url

  @doc "Is the agent running?"
  @spec running?() :: boolean
  def running?, do: Process.whereis(Server) != nil

  @doc false
  # Called when LiveCov's application starts: starts the agent when `config :live_cov, :agent`
  # asks for it. A bad configuration or a port in use is logged, never fatal to the node.
  def boot do
    case Application.get_env(:live_cov, :agent) do
      nil ->
        :ok

      false ->
        :ok

      opts when is_list(opts) ->
        if Keyword.get(opts, :enabled, true) == false do
          :ok
        else
          opts = opts |> Keyword.delete(:enabled) |> Keyword.put(:boot, true)

          with {:ok, config} <- Config.new(opts),
               {:ok, _info} <- start_config(config) do
            :ok
          else
            {:error, {_kind, message}} ->
              Logger.error("LiveCov agent not started (config :live_cov, :agent): #{message}")
              :ok
          end
        end

      other ->
        Logger.error(
          "LiveCov agent not started: config :live_cov, :agent must be a keyword list, got: " <>
            inspect(other, limit: 5)
        )

        :ok
    end
  end
end
