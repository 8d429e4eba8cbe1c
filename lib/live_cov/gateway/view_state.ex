defmodule LiveCov.Gateway.ViewState do
  @moduledoc false
  # Writes what `LiveCov.Gateway.View` reads into the gateway's ETS table: the state summary
  # (sources, runs, services), each service's builds, and each service's merged snapshot
  # (`LiveCov.Snapshot.merge/1` of its sources' totals) with a version, recomputed only for
  # services whose sources' data changed.

  alias LiveCov.Gateway.{Config, Runs, Source}
  alias LiveCov.Snapshot

  @doc "Publishes `state` (the server's) into `table`; `changed` names sources with new data."
  @spec put(:ets.tid() | atom, map, [String.t()], integer) :: :ok
  def put(table, state, changed, version) do
    changed_services = changed |> Enum.map(&state.sources[&1].service) |> Enum.uniq()
    services = Config.services(state.config)

    for service <- services,
        service in changed_services or :ets.lookup(table, {:service, service}) == [] do
      members = for {_, s} <- state.sources, s.service == service, do: s
      totals = members |> Enum.map(&Source.total/1) |> Enum.reject(&is_nil/1)
      merged = if totals == [], do: nil, else: Snapshot.merge(totals)
      :ets.insert(table, {{:service, service}, version, merged})
      :ets.insert(table, {{:builds, service}, builds(members)})
    end

    :ets.insert(table, {:state, summary(state, services)})
    :ok
  end

  defp builds(members) do
    members
    |> Enum.flat_map(fn s -> Enum.map(s.builds, fn {id, b} -> {id, b, s.name} end) end)
    |> Enum.group_by(&elem(&1, 0))
    |> Enum.map(fn {id, entries} ->
      {_, b, _} = Enum.max_by(entries, fn {_, b, _} -> b.last_seen end)

      Map.merge(b, %{
        id: id,
        sources: entries |> Enum.map(&elem(&1, 2)) |> Enum.sort(),
        first_seen: entries |> Enum.map(fn {_, b, _} -> b.first_seen end) |> Enum.min()
      })
    end)
    |> Enum.sort_by(&{&1.last_seen, &1.id}, :desc)
  end

  defp summary(state, services) do
    %{
      title: state.config.title,
      started_at: state.started_at,
      interval: state.config.interval,
      services: services,
      sources:
        state.sources |> Map.values() |> Enum.sort_by(& &1.name) |> Enum.map(&Source.info/1),
      runs: state.runs |> Runs.sorted() |> Enum.map(&Runs.public/1)
    }
  end
end
