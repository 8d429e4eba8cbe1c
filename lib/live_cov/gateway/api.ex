defmodule LiveCov.Gateway.Api do
  @moduledoc false
  # The gateway's JSON API (routes in `LiveCov.Gateway.Router`). Numbers come from
  # `LiveCov.Gateway.View`, as the dashboard's do. Timestamps are Unix milliseconds.

  alias LiveCov.Gateway.{Publisher, Runs, Server, View}
  alias LiveCov.JSON
  alias LiveCov.Snapshot

  @doc "A JSON response."
  def json(status, term), do: {:ok, status, "application/json", JSON.encode!(term)}

  @doc "`GET /api/status`."
  def status do
    with {:ok, st} <- View.fetch_state(),
         do: json(200, %{sources: st.sources, runs: st.runs, services: st.services})
  end

  @doc "`GET /api/services`: each service's totals, sources and builds."
  def services do
    with {:ok, st} <- View.fetch_state() do
      list =
        Enum.map(st.services, fn name ->
          case View.service_stats(name) do
            {:ok, stats} -> Map.merge(service_head(st, name), View.summary(stats))
            {:error, {_, msg}} -> Map.put(service_head(st, name), :error, msg)
          end
        end)

      json(200, %{services: list})
    end
  end

  @doc "`GET /api/services/:name` (`?build=`): totals, files, builds, sources."
  def service(name, query) do
    with {:ok, st} <- View.fetch_state(),
         {:ok, stats} <- View.service_stats(name, query["build"]) do
      body =
        service_head(st, name)
        |> Map.merge(View.summary(stats))
        |> Map.merge(%{build: query["build"], files: Enum.map(stats.files, &View.file_summary/1)})

      json(200, body)
    end
  end

  @doc "Name, sources and builds of a service."
  def service_head(st, name) do
    %{
      name: name,
      sources:
        for(
          s <- st.sources,
          s.service == name,
          do: Map.take(s, [:name, :status, :last_ok, :last_error])
        ),
      builds: Enum.map(View.builds(name), &Map.delete(&1, :hashes))
    }
  end

  @doc "`GET /api/services/:name/source?file=`."
  def source(name, query) do
    with {:ok, file} <- View.param(query, "file"),
         {:ok, stats} <- View.service_stats(name, query["build"]),
         {:ok, f} <- View.file(stats, file),
         do: json(200, file_body(f))
  end

  @doc "`GET /api/services/:name/snapshot`: the merged snapshot, encoded."
  def snapshot(name) do
    with {:ok, {_, snap}} <- View.service_snapshot(name),
         {:ok, bin} <- Snapshot.encode(snap || %Snapshot{}),
         do: {:ok, 200, "application/octet-stream", bin}
  end

  @doc "`GET /api/runs`."
  def runs do
    with {:ok, st} <- View.fetch_state(), do: json(200, %{runs: st.runs})
  end

  @doc "`GET /api/runs/:id`: the run, and per service its files when finished."
  def run(id) do
    with {:ok, run} <- View.run(id) do
      files =
        if run.status == "finished" do
          Map.new(run.services, fn service ->
            case View.run_stats(id, service) do
              {:ok, stats} -> {service, Enum.map(stats.files, &View.file_summary/1)}
              {:error, {_, msg}} -> {service, %{error: msg}}
            end
          end)
        else
          %{}
        end

      json(200, Map.put(run, :files, files))
    end
  end

  @doc "`GET /api/runs/:id/source?service=&file=`."
  def run_source(id, query) do
    with {:ok, service} <- View.param(query, "service"),
         {:ok, file} <- View.param(query, "file"),
         {:ok, stats} <- View.run_stats(id, service),
         {:ok, f} <- View.file(stats, file),
         do: json(200, file_body(f))
  end

  defp file_body(f) do
    f
    |> View.file_summary()
    |> Map.merge(%{lines: View.lines(f), source_shown: not f.missing_source?})
  end

  @doc "`POST /api/pull`."
  def pull do
    results =
      Map.new(Server.pull(), fn
        {n, :ok} -> {n, %{ok: true}}
        {n, {:error, msg}} -> {n, %{ok: false, error: msg}}
      end)

    json(200, %{sources: results})
  end

  @doc "`POST /runs`."
  def start_run(body) do
    with {:ok, st} <- View.fetch_state(),
         {:ok, params} <- decode_body(body),
         {:ok, params} <- Runs.params(params, st.services),
         {:ok, run} <- Server.start_run(params),
         do: json(201, run)
  end

  @doc "`POST /runs/:id/finish`: final pull, results, then the publishers."
  def finish_run(id) do
    with {:ok, run} <- finish_and_publish(id), do: json(200, run)
  end

  @doc "Finishes a run and runs the publishers: `{:ok, run}` with the `publish` results."
  def finish_and_publish(id) do
    with {:ok, run, measured} <- Server.finish_run(id) do
      config = View.config()
      results = Publisher.publish(run, measured, config.publishers, config)
      :ok = Server.record_publish(id, results)
      {:ok, %{run | publish: run.publish ++ results}}
    end
  end

  defp decode_body(""), do: {:ok, %{}}

  defp decode_body(body) do
    case JSON.decode(body) do
      {:ok, %{} = map} -> {:ok, map}
      {:ok, _} -> {:error, {:invalid_body, "the body must be a JSON object"}}
      {:error, {_, msg}} -> {:error, {:malformed_json, "the body is not JSON: #{msg}"}}
    end
  end
end
