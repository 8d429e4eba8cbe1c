defmodule LiveCov.Agent.Config do
  @moduledoc false
  # Validated settings of the agent (`LiveCov.Agent`), from `LiveCov.Agent.start/1` options or
  # `config :live_cov, :agent, ...`.
  #
  # | option | default | meaning |
  # |---|---|---|
  # | `:token` | required | bearer token (at least 16 bytes); `{:system, "VAR"}` reads it from the environment |
  # | `:auth` | `true` | `false` serves every route without a token; only allowed on a loopback `:bind` |
  # | `:bind` | `"127.0.0.1"` | address to listen on (a string or an `:inet` tuple) |
  # | `:port` | `9568` | TCP port; `0` picks a free one (see `LiveCov.Agent.config/0`) |
  # | `:max_body_bytes` | `65536` | larger request bodies are refused with 413 before they are read |
  # | `:max_clients` | `256` | simultaneous connections; more are answered 503 by httpd |
  # | `:max_concurrent` | schedulers online | report/metrics computations running at once (more wait) |
  # | `:request_timeout` | `60_000` | ms a request may wait for its report before a 503 |
  # | `:keep_alive_timeout` | `30` | seconds an idle keep-alive connection is kept |
  # | `:report_opts` | `[]` | defaults for report routes, e.g. `[compile_root: "/build/app", runtime_root: "/srv/app"]` |

  alias LiveCov.ConfigCheck, as: C

  @kind :invalid_agent_config
  @min_token 16
  @report_keys [:compile_root, :runtime_root, :root, :path_map, :ignore_modules, :skip_files]
  @known [
    :token,
    :auth,
    :bind,
    :port,
    :max_body_bytes,
    :max_clients,
    :max_concurrent,
    :request_timeout,
    :keep_alive_timeout,
    :report_opts,
    :enabled,
    :boot
  ]

  @enforce_keys [:bind, :port]
  defstruct bind: {127, 0, 0, 1},
            port: 9568,
            auth: true,
            token_hash: nil,
            max_body_bytes: 65_536,
            max_clients: 256,
            max_concurrent: 1,
            request_timeout: 60_000,
            keep_alive_timeout: 30,
            report_opts: [],
            boot: false

  @type t :: %__MODULE__{
          bind: :inet.ip_address(),
          port: :inet.port_number(),
          auth: boolean,
          token_hash: binary | nil,
          max_body_bytes: pos_integer,
          max_clients: pos_integer,
          max_concurrent: pos_integer,
          request_timeout: pos_integer,
          keep_alive_timeout: pos_integer,
          report_opts: keyword,
          boot: boolean
        }

  @doc "The minimum token length in bytes."
  def min_token_bytes, do: @min_token

  @doc "Report options the agent accepts as defaults (`:report_opts`)."
  def report_keys, do: @report_keys

  @doc """
  Validates options. Returns `{:ok, config}` or `{:error, {:invalid_agent_config, message}}`
  naming the bad option and the fix. The token itself is not kept, only its SHA-256.
  """
  @spec new(keyword) :: {:ok, t} | {:error, {atom, String.t()}}
  def new(opts) when is_list(opts) do
    with :ok <- C.keys(@kind, opts, @known, "agent option"),
         {:ok, bind} <- C.bind(@kind, Keyword.get(opts, :bind, "127.0.0.1")),
         {:ok, port} <- C.int(@kind, opts, :port, 9568, 0, 65_535),
         {:ok, auth} <- auth(Keyword.get(opts, :auth, true)),
         {:ok, token_hash} <- token(Keyword.get(opts, :token), auth, bind),
         {:ok, body} <- C.int(@kind, opts, :max_body_bytes, 65_536, 1, 1_073_741_824),
         {:ok, clients} <- C.int(@kind, opts, :max_clients, 256, 1, 100_000),
         {:ok, conc} <-
           C.int(@kind, opts, :max_concurrent, System.schedulers_online(), 1, 10_000),
         {:ok, timeout} <- C.int(@kind, opts, :request_timeout, 60_000, 1, 86_400_000),
         {:ok, keep} <- C.int(@kind, opts, :keep_alive_timeout, 30, 1, 86_400),
         {:ok, report_opts} <- report_opts(Keyword.get(opts, :report_opts, [])) do
      {:ok,
       %__MODULE__{
         bind: bind,
         port: port,
         auth: auth,
         token_hash: token_hash,
         max_body_bytes: body,
         max_clients: clients,
         max_concurrent: conc,
         request_timeout: timeout,
         keep_alive_timeout: keep,
         report_opts: report_opts,
         boot: Keyword.get(opts, :boot, false) == true
       }}
    end
  end

  def new(other),
    do: error("agent options must be a keyword list, got: #{inspect(other, limit: 5)}")

  defp auth(b) when is_boolean(b), do: {:ok, b}
  defp auth(other), do: error("auth: must be true or false, got: #{inspect(other)}")

  defp token({:system, var}, auth, bind) when is_binary(var) do
    case System.get_env(var) do
      nil when auth ->
        error(
          "token: {:system, #{inspect(var)}} but the environment variable #{var} is not set; " <>
            "set it to a secret of at least #{@min_token} bytes"
        )

      value ->
        token(value, auth, bind)
    end
  end

  defp token(nil, true, _bind) do
    error(
      "the agent needs a token: start it with token: \"<secret of at least #{@min_token} bytes>\" " <>
        "(or token: {:system, \"LIVE_COV_AGENT_TOKEN\"}); auth: false is only allowed on a " <>
        "loopback bind address"
    )
  end

  defp token(nil, false, bind) do
    if LiveCov.Net.loopback?(bind),
      do: {:ok, nil},
      else:
        error(
          "auth: false is refused on #{:inet.ntoa(bind)}, which is not a loopback address: " <>
            "give a token, or bind to 127.0.0.1"
        )
  end

  defp token(token, auth, bind) when is_binary(token) do
    cond do
      not auth and not LiveCov.Net.loopback?(bind) ->
        token(nil, false, bind)

      byte_size(token) < @min_token ->
        error("token: too short (#{byte_size(token)} bytes); use at least #{@min_token} bytes")

      String.trim(token) != token or String.contains?(token, [" ", "\t", "\r", "\n"]) ->
        error("token: must not contain whitespace")

      true ->
        {:ok, if(auth, do: :crypto.hash(:sha256, token), else: nil)}
    end
  end

  defp token(other, _auth, _bind),
    do:
      error("token: must be a string or {:system, \"ENV_VAR\"}, got: #{inspect(other, limit: 3)}")

  defp report_opts(opts) do
    cond do
      not Keyword.keyword?(opts) ->
        error("report_opts: must be a keyword list, got: #{inspect(opts, limit: 5)}")

      (unknown = Keyword.keys(opts) -- @report_keys) != [] ->
        error("report_opts: unknown key(s) #{inspect(unknown)}; valid: #{inspect(@report_keys)}")

      true ->
        {:ok, opts}
    end
  end

  defp error(message), do: C.error(@kind, message)
end
