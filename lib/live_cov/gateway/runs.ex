defmodule LiveCov.Gateway.Runs do
  @moduledoc false
  # Test runs: pure functions on run records.
  #
  # A run records, at its start, each of its sources' total (`LiveCov.Gateway.Source.total/1`,
  # encoded) as a baseline. A source's total only grows (restarts and resets are folded into
  # it), so what a run measured for a service is `LiveCov.Snapshot.delta(baseline, total at
  # finish)` over the service's sources - also when an agent restarted during the run, and
  # whether or not the run reset the agents at its start (a reset folds each agent's counts
  # into its total first, so the delta then is exactly what ran since the reset).
  #
  #     %{id: "r3-1a2b", name: "nightly", status: "running" | "finished",
  #       reset: true, services: ["api"], sources: ["api-1", "api-2"],
  #       started_at: ms, finished_at: ms | nil, labels: %{},
  #       baselines: %{"api-1" => binary | nil},       # dropped when the run finishes
  #       results: %{"api" => %{coverage:, sloc:, hits:, misses:, files:}},
  #       publish: [%{service:, publisher:, ok:, detail:}], warnings: [String.t()]}

  alias LiveCov.Gateway.Source
  alias LiveCov.Snapshot

  @doc "A new run id, unique per gateway (`seq` is the gateway's run counter)."
  @spec new_id(pos_integer) :: String.t()
  def new_id(seq), do: "r#{seq}-" <> Base.encode16(:crypto.strong_rand_bytes(2), case: :lower)

  @doc """
  Validates `POST /runs` parameters (`name`, `reset`, `services`, `labels`) against the
  configured services. `{:ok, %{name:, reset:, services:, labels:}}` or an error.
  """
  @spec params(map, [String.t()]) :: {:ok, map} | {:error, {atom, String.t()}}
  def params(body, known_services) when is_map(body) do
    allowed = ["name", "reset", "services", "labels"]
    name = Map.get(body, "name", "run")
    services = Map.get(body, "services", known_services)
    labels = Map.get(body, "labels", %{})

    cond do
      (extra = Map.keys(body) -- allowed) != [] ->
        bad("unknown field(s) #{inspect(extra)}; allowed: #{inspect(allowed)}")

      not (is_binary(name) and name != "" and String.length(name) <= 200) ->
        bad("name must be a non-empty string of at most 200 characters")

      not is_boolean(Map.get(body, "reset", false)) ->
        bad("reset must be true or false")

      not (is_list(services) and services != [] and Enum.all?(services, &is_binary/1)) ->
        bad("services must be a non-empty list of service names")

      (unknown = services -- known_services) != [] ->
        {:error,
         {:unknown_service,
          "unknown service(s) #{inspect(unknown)}; configured: #{inspect(known_services)}"}}

      not (is_map(labels) and Enum.all?(labels, fn {_k, v} -> is_binary(v) end)) ->
        bad("labels must be an object of strings")

      true ->
        {:ok,
         %{
           name: name,
           reset: Map.get(body, "reset", false),
           services: Enum.uniq(services),
           labels: labels
         }}
    end
  end

  def params(_other, _known), do: bad("the body must be a JSON object")

  defp bad(message), do: {:error, {:invalid_body, message}}

  @doc "A running run with its baselines taken from `sources` (`%{name => Source.t()}`)."
  @spec new(String.t(), map, [Source.t()], integer, [String.t()]) :: map
  def new(id, params, sources, now, warnings \\ []) do
    %{
      id: id,
      name: params.name,
      status: "running",
      reset: params.reset,
      services: params.services,
      sources: Enum.map(sources, & &1.name),
      started_at: now,
      finished_at: nil,
      labels: params.labels,
      baselines: Map.new(sources, fn s -> {s.name, encode(Source.total(s))} end),
      results: %{},
      publish: [],
      warnings: warnings
    }
  end

  defp encode(nil), do: nil

  defp encode(snap) do
    {:ok, bin} = Snapshot.encode(snap)
    bin
  end

  @doc """
  What the run measured per service: `%{service => Snapshot.t()}` from the sources' totals
  now (`sources`: `%{name => Source.t()}`).
  """
  @spec measure(map, %{String.t() => Source.t()}) ::
          {:ok, %{String.t() => Snapshot.t()}} | {:error, {atom, String.t()}}
  def measure(run, sources) do
    with {:ok, baselines} <- decode_baselines(run.baselines) do
      result =
        Map.new(run.services, fn service ->
          names = for n <- run.sources, s = sources[n], s != nil, s.service == service, do: n

          later =
            names
            |> Enum.map(&Source.total(sources[&1]))
            |> Enum.reject(&is_nil/1)
            |> Snapshot.merge()

          earlier =
            names |> Enum.map(&baselines[&1]) |> Enum.reject(&is_nil/1) |> Snapshot.merge()

          {service, Snapshot.delta(earlier, later)}
        end)

      {:ok, result}
    end
  end

  defp decode_baselines(baselines) do
    Enum.reduce_while(baselines, {:ok, %{}}, fn
      {name, nil}, {:ok, acc} ->
        {:cont, {:ok, Map.put(acc, name, nil)}}

      {name, bin}, {:ok, acc} ->
        case Snapshot.decode(bin) do
          {:ok, snap} -> {:cont, {:ok, Map.put(acc, name, snap)}}
          {:error, {_, msg}} -> {:halt, {:error, {:bad_baseline, "baseline of #{name}: #{msg}"}}}
        end
    end)
  end

  @doc "Marks a run finished with its per-service result summaries."
  @spec finish(map, map, integer, [String.t()]) :: map
  def finish(run, summaries, now, warnings \\ []) do
    %{
      run
      | status: "finished",
        finished_at: now,
        results: summaries,
        baselines: %{},
        warnings: run.warnings ++ warnings
    }
  end

  @doc "A run without its baselines (what the API shows)."
  @spec public(map) :: map
  def public(run), do: Map.delete(run, :baselines)

  @doc "Runs, newest first."
  @spec sorted(map) :: [map]
  def sorted(runs), do: runs |> Map.values() |> Enum.sort_by(&{&1.started_at, &1.id}, :desc)
end
