defmodule LiveCov.Gateway.Config do
  @moduledoc false
  # The gateway's settings, from a `gateway.exs` file (Elixir terms, evaluated with
  # `Code.eval_file/1`; the file's value is a keyword list) or from a keyword list.
  #
  #     [
  #       data_dir: "/var/lib/live_cov_gateway",        # required: persisted state, run results
  #       port: 9570, bind: "127.0.0.1",                  # the dashboard and API
  #       token: {:system, "LIVE_COV_GATEWAY_TOKEN"},     # guards POST routes (required off loopback)
  #       interval: 10_000, timeout: 5_000,               # ms between pulls; per-pull timeout
  #       backoff: 10_000, max_backoff: 300_000,          # wait after failures: backoff * 2^(n-1), capped
  #       source_roots: [{"/build/app", "/srv/app/src"}, "/opt/src"],
  #       report_opts: [root: "/srv/app/src", ignore_modules: [~r/Test/]],
  #       distribution: [name: "live_cov_gateway@127.0.0.1", cookie: "secret"],
  #       agents: [[url: "http://10.0.0.5:9568", token: {:system, "AGENT_TOKEN"}, service: "api"]],
  #       nodes: [[node: :"worker@10.0.0.6", service: "worker"]],
  #       publishers: [[type: :directory, dir: "/srv/coverage"],
  #                    [type: :coveralls, url: "https://cov.example.com/api/v1/jobs"]]
  #     ]
  #
  # Every source has a unique `name` (default: the URL or node name). `source_roots` entries are
  # directories whose files the source view may show: `"/dir"` (sources compiled there) or
  # `{compile_prefix, local_dir}` (sources compiled under the prefix, read from the directory).
  # `new/1` gives `{:ok, config}` or `{:error, {:invalid_gateway_config, message}}`.

  alias LiveCov.ConfigCheck, as: C

  @kind :invalid_gateway_config

  @known [:data_dir, :port, :bind, :token, :interval, :timeout, :backoff, :max_backoff] ++
           [:max_concurrency, :source_roots, :report_opts, :distribution, :agents, :nodes] ++
           [:publishers, :title]
  @report_keys [:compile_root, :runtime_root, :path_map, :root, :ignore_modules, :skip_files] ++
                 [:empty_coverage]
  @formats [:lcov, :cobertura, :html, :json, :coveralls, :terminal, :annotated]

  defstruct data_dir: nil,
            port: 9570,
            bind: {127, 0, 0, 1},
            token: nil,
            interval: 10_000,
            timeout: 5_000,
            backoff: 10_000,
            max_backoff: 300_000,
            max_concurrency: 16,
            source_roots: [],
            report_opts: [],
            distribution: nil,
            sources: [],
            publishers: [],
            title: "LiveCov Cover Center"

  @type t :: %__MODULE__{}

  @doc "Reads and validates a config file (`.exs`)."
  @spec load(Path.t()) :: {:ok, t} | {:error, {atom, String.t()}}
  def load(path) do
    path = Path.expand(to_string(path))

    if File.regular?(path) do
      try do
        {value, _binding} = Code.eval_file(path)
        new(value)
      rescue
        e ->
          C.error(
            @kind,
            "#{path} could not be evaluated: #{Exception.message(e)}; fix the Elixir syntax"
          )
      end
    else
      C.error(@kind, "config file #{path} does not exist; give --config path/to/gateway.exs")
    end
  end

  @doc "Validates options (see the module doc)."
  @spec new(keyword | map) :: {:ok, t} | {:error, {atom, String.t()}}
  def new(opts) when is_map(opts), do: new(Map.to_list(opts))

  def new(opts) when is_list(opts) do
    with :ok <- C.keys(@kind, opts, @known, "gateway option"),
         {:ok, dir} <- data_dir(opts[:data_dir]),
         {:ok, bind} <- C.bind(@kind, Keyword.get(opts, :bind, "127.0.0.1")),
         {:ok, port} <- C.int(@kind, opts, :port, 9570, 0, 65_535),
         {:ok, token} <- C.token(@kind, Keyword.get(opts, :token), "token"),
         :ok <- token_needed(token, bind),
         {:ok, interval} <- C.int(@kind, opts, :interval, 10_000, 10, 86_400_000),
         {:ok, timeout} <- C.int(@kind, opts, :timeout, 5_000, 10, 3_600_000),
         {:ok, backoff} <- C.int(@kind, opts, :backoff, interval, 0, 86_400_000),
         {:ok, max_backoff} <- C.int(@kind, opts, :max_backoff, 300_000, 0, 86_400_000),
         {:ok, conc} <- C.int(@kind, opts, :max_concurrency, 16, 1, 1024),
         {:ok, roots} <- source_roots(Keyword.get(opts, :source_roots, [])),
         {:ok, report_opts} <- report_opts(Keyword.get(opts, :report_opts, [])),
         {:ok, dist} <- distribution(Keyword.get(opts, :distribution)),
         {:ok, agents} <- C.list(@kind, opts, :agents, &agent/2),
         {:ok, nodes} <- C.list(@kind, opts, :nodes, &node_source/2),
         :ok <- some_source(agents ++ nodes),
         :ok <- unique(agents ++ nodes),
         {:ok, pubs} <- C.list(@kind, opts, :publishers, &publisher/2),
         {:ok, title} <-
           C.string(@kind, Keyword.get(opts, :title, "LiveCov Cover Center"), "title") do
      {:ok,
       %__MODULE__{
         data_dir: dir,
         bind: bind,
         port: port,
         token: token,
         interval: interval,
         timeout: timeout,
         backoff: backoff,
         max_backoff: max_backoff,
         max_concurrency: conc,
         source_roots: roots,
         report_opts: report_opts,
         distribution: dist,
         sources: agents ++ nodes,
         publishers: pubs,
         title: title
       }}
    end
  end

  def new(other),
    do:
      C.error(
        @kind,
        "the gateway config must be a keyword list, got: #{inspect(other, limit: 5)}"
      )

  @doc """
  Options for `LiveCov.Stats.build/2`: `report_opts` plus the source roots as `path_map`.
  """
  @spec stats_opts(t) :: keyword
  def stats_opts(%__MODULE__{report_opts: opts, source_roots: roots}) do
    pairs = for {from, to} <- roots, from != to, do: {from, to}
    Keyword.update(opts, :path_map, pairs, &(&1 ++ pairs))
  end

  @doc "The local directories the source view may read from."
  @spec allowed_dirs(t) :: [String.t()]
  def allowed_dirs(%__MODULE__{source_roots: roots}), do: Enum.map(roots, &elem(&1, 1))

  @doc "The service names, in configuration order."
  @spec services(t) :: [String.t()]
  def services(%__MODULE__{sources: sources}),
    do: sources |> Enum.map(& &1.service) |> Enum.uniq()

  defp data_dir(nil),
    do:
      C.error(
        @kind,
        "data_dir: required; give a directory for the gateway's state, e.g. \"/var/lib/live_cov_gateway\""
      )

  defp data_dir(dir) when is_binary(dir) and dir != "" do
    dir = Path.expand(dir)

    case File.mkdir_p(dir) do
      :ok -> {:ok, dir}
      {:error, r} -> C.error(@kind, "data_dir: cannot create #{dir}: #{:file.format_error(r)}")
    end
  end

  defp data_dir(other),
    do: C.error(@kind, "data_dir: must be a path string, got: #{inspect(other)}")

  defp token_needed(nil, bind) do
    if LiveCov.Net.loopback?(bind),
      do: :ok,
      else:
        C.error(
          @kind,
          "token: required when binding #{:inet.ntoa(bind)} (not loopback); give token: \"<16+ bytes>\""
        )
  end

  defp token_needed(_token, _bind), do: :ok

  defp source_roots(roots) when is_list(roots) do
    C.each(@kind, roots, "source_roots", fn
      dir when is_binary(dir) and dir != "" ->
        {:ok, {trim(Path.expand(dir)), trim(Path.expand(dir))}}

      {from, to} when is_binary(from) and is_binary(to) and from != "" and to != "" ->
        {:ok, {trim(from), trim(Path.expand(to))}}

      other ->
        {:error, "#{inspect(other)} is not a directory or a {compile_prefix, local_dir} pair"}
    end)
  end

  defp source_roots(other),
    do: C.error(@kind, "source_roots: must be a list, got: #{inspect(other)}")

  defp trim("/"), do: "/"
  defp trim(p), do: String.trim_trailing(p, "/")

  defp report_opts(opts) do
    with :ok <- C.keys(@kind, opts, @report_keys, "report_opts key") do
      case LiveCov.Stats.build([], opts) do
        {:error, {_, msg}} -> C.error(@kind, "report_opts: #{msg}")
        _ -> {:ok, opts}
      end
    end
  end

  defp distribution(nil), do: {:ok, nil}

  defp distribution(opts) when is_list(opts) do
    with :ok <- C.keys(@kind, opts, [:name, :cookie], "distribution key"),
         {:ok, name} <- C.atomish(@kind, opts[:name], "distribution name"),
         {:ok, cookie} <- C.optional_atomish(@kind, opts[:cookie], "distribution cookie") do
      {:ok, %{name: name, cookie: cookie}}
    end
  end

  defp distribution(other),
    do:
      C.error(
        @kind,
        "distribution: must be [name: \"gw@host\", cookie: \"...\"], got: #{inspect(other)}"
      )

  defp agent(entry, i) do
    with {:ok, e} <- C.entry(@kind, entry, [:url, :token, :service, :name], "agents", i),
         {:ok, url} <- C.url(@kind, e[:url], "agents[#{i}].url"),
         {:ok, token} <- C.token(@kind, e[:token], "agents[#{i}].token"),
         {:ok, service} <- C.string(@kind, e[:service] || "default", "agents[#{i}].service"),
         {:ok, name} <- C.string(@kind, e[:name] || url, "agents[#{i}].name") do
      {:ok, %{kind: :agent, name: name, url: url, token: token, service: service, node: nil}}
    end
  end

  defp node_source(entry, i) do
    with {:ok, e} <- C.entry(@kind, entry, [:node, :cookie, :service, :name], "nodes", i),
         {:ok, node} <- C.atomish(@kind, e[:node], "nodes[#{i}].node"),
         {:ok, cookie} <- C.optional_atomish(@kind, e[:cookie], "nodes[#{i}].cookie"),
         {:ok, service} <- C.string(@kind, e[:service] || "default", "nodes[#{i}].service"),
         {:ok, name} <- C.string(@kind, e[:name] || Atom.to_string(node), "nodes[#{i}].name") do
      {:ok, %{kind: :node, name: name, node: node, cookie: cookie, service: service, url: nil}}
    end
  end

  defp publisher(entry, i) do
    with {:ok, e} <- C.entry(@kind, entry, nil, "publishers", i) do
      case e[:type] do
        t when t in [:directory, "directory"] ->
          with :ok <-
                 C.keys(@kind, Map.to_list(e), [:type, :dir, :formats], "publishers[#{i}] key"),
               {:ok, dir} <- C.string(@kind, e[:dir], "publishers[#{i}].dir"),
               {:ok, formats} <-
                 formats(Map.get(e, :formats, [:lcov, :cobertura, :html, :json]), i) do
            {:ok, %{type: :directory, dir: Path.expand(dir), formats: formats}}
          end

        t when t in [:coveralls, "coveralls"] ->
          with {:ok, url} <- C.url(@kind, e[:url], "publishers[#{i}].url") do
            opts = e |> Map.drop([:type, :url]) |> Map.to_list()
            {:ok, %{type: :coveralls, url: url, opts: opts}}
          end

        other ->
          C.error(
            @kind,
            "publishers[#{i}].type: #{inspect(other)} is unknown; use :directory or :coveralls"
          )
      end
    end
  end

  defp formats(list, i) when is_list(list) and list != [] do
    C.each(@kind, list, "publishers[#{i}].formats", fn f ->
      case Enum.find(@formats, &(&1 == f or Atom.to_string(&1) == f)) do
        nil -> {:error, "#{inspect(f)} is not a format; use #{inspect(@formats)}"}
        f -> {:ok, f}
      end
    end)
  end

  defp formats(other, i),
    do:
      C.error(@kind, "publishers[#{i}].formats: must be a non-empty list, got: #{inspect(other)}")

  defp some_source([]),
    do:
      C.error(
        @kind,
        "no sources: give agents: [[url: ..., token: ..., service: ...]] and/or nodes: [...]"
      )

  defp some_source(_), do: :ok

  defp unique(sources) do
    case sources |> Enum.frequencies_by(& &1.name) |> Enum.find(fn {_, n} -> n > 1 end) do
      nil ->
        :ok

      {name, _} ->
        C.error(
          @kind,
          "source name #{inspect(name)} is used twice; give each source a unique name: option"
        )
    end
  end
end
