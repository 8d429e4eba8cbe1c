defmodule LiveCov.Gateway.View do
  @moduledoc false
  # The read side shared by the JSON API and the dashboard, so both show the same numbers.
  #
  # `LiveCov.Gateway.Server` publishes its state in the ETS table `:live_cov_gateway`
  # (sources, runs, and each service's merged snapshot with a version); reports
  # (`LiveCov.Stats`) are computed from them on demand in the reading process and cached per
  # version. Sources are shown only for files under the configured `source_roots`; other
  # files keep their numbers but no text.

  alias LiveCov.Gateway.{Config, Store}
  alias LiveCov.Snapshot
  alias LiveCov.Stats

  @table :live_cov_gateway

  @doc "The ETS table's name."
  def table, do: @table

  @doc "`%{sources: [info], runs: [run], services: [name], title:, started_at:}`, or nil when the gateway is not running."
  @spec state() :: map | nil
  def state, do: lookup(:state)

  @doc "`{:ok, state()}`, or an `:unavailable` error while the gateway is not running."
  @spec fetch_state() :: {:ok, map} | {:error, {:unavailable, String.t()}}
  def fetch_state do
    case state() do
      nil -> {:error, {:unavailable, "the gateway is starting or stopped"}}
      st -> {:ok, st}
    end
  end

  @doc "A required, non-empty query parameter: `{:ok, value}` or an `:invalid_parameter` error."
  @spec param(map, String.t()) :: {:ok, String.t()} | {:error, {:invalid_parameter, String.t()}}
  def param(query, key) do
    case query[key] do
      v when is_binary(v) and v != "" -> {:ok, v}
      _ -> {:error, {:invalid_parameter, "query parameter #{key} is required"}}
    end
  end

  @doc "The gateway's (token-free) configuration, or nil."
  @spec config() :: Config.t() | nil
  def config, do: lookup(:config)

  defp lookup(key) do
    case :ets.lookup(@table, key) do
      [{_, value}] -> value
      [] -> nil
    end
  rescue
    ArgumentError -> nil
  end

  @doc "A service's merged snapshot and its version: `{:ok, {version, snap | nil}}` or not found."
  @spec service_snapshot(String.t()) ::
          {:ok, {integer, Snapshot.t() | nil}} | {:error, {atom, String.t()}}
  def service_snapshot(name) do
    case :ets.lookup(@table, {:service, name}) do
      [{_, version, snap}] -> {:ok, {version, snap}}
      [] -> not_found(name)
    end
  rescue
    ArgumentError -> {:error, {:unavailable, "the gateway is not running"}}
  end

  defp not_found(name) do
    known = (state() || %{services: []}).services
    {:error, {:not_found, "no service #{inspect(name)}; services: #{inspect(known)}"}}
  end

  @doc """
  The report of a service's data (all builds; with `build` only the modules of that build):
  `{:ok, stats}` or an error.
  """
  @spec service_stats(String.t(), String.t() | nil) ::
          {:ok, Stats.t()} | {:error, {atom, String.t()}}
  def service_stats(name, build \\ nil) do
    with {:ok, {version, snap}} <- service_snapshot(name),
         {:ok, snap} <- restrict(name, snap, build) do
      cached({:service, name, build}, version, fn -> stats(snap, config()) end)
    end
  end

  defp restrict(_name, snap, nil), do: {:ok, snap}

  defp restrict(name, snap, build) do
    case builds(name) |> Enum.find(&(&1.id == build)) do
      nil ->
        {:error, {:not_found, "service #{name} has no build #{inspect(build)}"}}

      %{hashes: hashes} ->
        snap = snap || %Snapshot{}

        {:ok,
         %{snap | metas: Map.take(snap.metas, hashes), counts: Map.take(snap.counts, hashes)}}
    end
  end

  @doc "A finished run's report for one service."
  @spec run_stats(String.t(), String.t()) :: {:ok, Stats.t()} | {:error, {atom, String.t()}}
  def run_stats(run_id, service) do
    with {:ok, run} <- run(run_id),
         :ok <- finished(run),
         :ok <- in_run(run, service) do
      cached({:run, run_id, service}, 0, fn ->
        with {:ok, snap} <- Store.load_run(config().data_dir, run_id, service),
             do: stats(snap, config())
      end)
    end
  end

  defp finished(%{status: "finished"}), do: :ok
  defp finished(run), do: {:error, {:conflict, "run #{run.id} is still running; finish it first"}}

  defp in_run(run, service) do
    if service in run.services,
      do: :ok,
      else:
        {:error,
         {:not_found,
          "run #{run.id} has no service #{inspect(service)}; it has #{inspect(run.services)}"}}
  end

  @doc "A run (public fields) by id."
  @spec run(String.t()) :: {:ok, map} | {:error, {atom, String.t()}}
  def run(id) do
    case Enum.find((state() || %{runs: []}).runs, &(&1.id == id)) do
      nil -> {:error, {:not_found, "no run #{inspect(id)}"}}
      run -> {:ok, run}
    end
  end

  @doc "The builds of a service, newest first: `[%{id:, git:, modules:, sources:, first_seen:, last_seen:, hashes:}]`."
  @spec builds(String.t()) :: [map]
  def builds(name) do
    case :ets.lookup(@table, {:builds, name}) do
      [{_, builds}] -> builds
      [] -> []
    end
  rescue
    ArgumentError -> []
  end

  @doc "Coverage statistics of a snapshot with the gateway's report options (sources sandboxed)."
  @spec stats(Snapshot.t() | nil, Config.t()) :: {:ok, Stats.t()} | {:error, {atom, String.t()}}
  def stats(nil, config), do: stats(%Snapshot{}, config)

  def stats(%Snapshot{} = snap, %Config{} = config) do
    case LiveCov.SnapshotReport.report(snap, [loaded: MapSet.new()] ++ Config.stats_opts(config)) do
      %Stats{} = stats -> {:ok, sandbox(stats, Config.allowed_dirs(config))}
      {:error, _} = error -> error
    end
  end

  # Text of files outside the source roots is never shown (their numbers stay).
  defp sandbox(stats, dirs) do
    files =
      Enum.map(stats.files, fn f ->
        if allowed?(f.path, dirs),
          do: f,
          else: %{f | source: Enum.map(f.source, &%{&1 | source: ""}), missing_source?: true}
      end)

    %{stats | files: files}
  end

  defp allowed?(path, dirs) do
    path = Path.expand(path)
    Enum.any?(dirs, fn d -> d == "/" or path == d or String.starts_with?(path, d <> "/") end)
  end

  @doc "The numbers of a report: `%{coverage:, sloc:, hits:, misses:, files:}`."
  @spec summary(Stats.t()) :: map
  def summary(%Stats{} = s),
    do: %{
      coverage: s.coverage,
      sloc: s.sloc,
      hits: s.hits,
      misses: s.misses,
      files: length(s.files)
    }

  @doc "One file's numbers (no lines)."
  @spec file_summary(LiveCov.Stats.Source.t()) :: map
  def file_summary(f),
    do: %{
      filename: f.filename,
      coverage: f.coverage,
      sloc: f.sloc,
      hits: f.hits,
      misses: f.misses
    }

  @doc "A file of a report by its display name."
  @spec file(Stats.t(), String.t()) ::
          {:ok, LiveCov.Stats.Source.t()} | {:error, {atom, String.t()}}
  def file(%Stats{files: files}, filename) do
    case Enum.find(files, &(&1.filename == filename)) do
      nil -> {:error, {:not_found, "no file #{inspect(filename)} in this report"}}
      f -> {:ok, f}
    end
  end

  @doc "Per-line data of a file: `[%{line:, hits: nil | n, text:}]`."
  @spec lines(LiveCov.Stats.Source.t()) :: [map]
  def lines(f) do
    f.source
    |> Enum.with_index(1)
    |> Enum.map(fn {l, n} -> %{line: n, hits: l.coverage, text: l.source} end)
  end

  # Reports are computed once per (key, version) and kept in the table.
  defp cached(key, version, fun) do
    case :ets.lookup(@table, {:stats, key}) do
      [{_, ^version, stats}] ->
        {:ok, stats}

      _ ->
        with {:ok, stats} <- fun.() do
          :ets.insert(@table, {{:stats, key}, version, stats})
          {:ok, stats}
        end
    end
  rescue
    ArgumentError -> {:error, {:unavailable, "the gateway is not running"}}
  end
end
