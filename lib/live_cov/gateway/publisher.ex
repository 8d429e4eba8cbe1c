defmodule LiveCov.Gateway.Publisher do
  @moduledoc false
  # Publishes a finished run's result of each service with the configured publishers:
  #
  #   * `[type: :directory, dir: "/srv/coverage", formats: [:lcov, :cobertura, :html, :json]]` -
  #     writes the formats (`LiveCov.Report.Writer`, atomically) to
  #     `<dir>/<run id>/<service>/`.
  #   * `[type: :coveralls, url: "https://...", ...]` - POSTs the Coveralls JSON
  #     (`LiveCov.Publish`, with its retries and backoff); every other key is an option of
  #     `LiveCov.Publish.publish/2` (`headers:`, `retries:`, `repo_token:`, ...). By default
  #     `service_job_id` is the run id and `flag_name` the service.
  #
  # Returns one result per service and publisher:
  # `%{service:, publisher:, ok: boolean, detail: paths | status | message}`.

  alias LiveCov.Gateway.{Store, View}
  alias LiveCov.Publish
  alias LiveCov.Report.Writer

  @doc "Publishes `measured` (`%{service => snapshot}`) of `run` with `publishers`."
  @spec publish(map, %{String.t() => LiveCov.Snapshot.t()}, [map], LiveCov.Gateway.Config.t()) ::
          [map]
  def publish(run, measured, publishers, config) do
    for {service, snap} <- Enum.sort(measured), publisher <- publishers do
      result =
        case View.stats(snap, config) do
          {:ok, stats} -> run_one(publisher, stats, run, service)
          {:error, _} = error -> error
        end

      describe(publisher, service, result)
    end
  end

  @doc "The directory a directory publisher writes a run's service to."
  @spec dir_of(map, String.t(), String.t()) :: Path.t()
  def dir_of(%{dir: dir}, run_id, service),
    do: Path.join([dir, Store.safe(run_id), Store.safe(service)])

  defp run_one(%{type: :directory, formats: formats} = p, stats, run, service) do
    Writer.write(stats, formats, dir_of(p, run.id, service))
  end

  defp run_one(%{type: :coveralls, url: url, opts: opts}, stats, run, service) do
    defaults = [service_job_id: run.id, flag_name: service]
    Publish.publish(url, [stats: stats] ++ Keyword.merge(defaults, opts))
  end

  defp describe(p, service, result) do
    base = %{service: service, publisher: label(p), at: System.os_time(:millisecond)}

    case result do
      {:ok, paths} when is_list(paths) ->
        Map.merge(base, %{ok: true, detail: paths})

      {:ok, %{status: status, attempts: n}} ->
        Map.merge(base, %{ok: true, detail: "HTTP #{status} after #{n} attempt(s)"})

      {:error, {kind, msg}} ->
        Map.merge(base, %{ok: false, detail: "#{kind}: #{msg}"})
    end
  end

  defp label(%{type: :directory, dir: dir}), do: "directory #{dir}"
  defp label(%{type: :coveralls, url: url}), do: "coveralls #{url}"
end
