defmodule LiveCov.Format.Coveralls do
  @moduledoc false
  # The Coveralls.io JSON job format (the body `excoveralls` posts):
  #
  #     {"source_files": [{"name": "lib/report_app/calc.ex",
  #                        "source_digest": "<md5 hex of the file>",
  #                        "coverage": [null, 5, 0, ...],
  #                        "source": "<file text>"}],
  #      "service_name": "github", ...}
  #
  # `coverage` has one entry per source line: `null` for lines that are not
  # relevant, else the count. `name` is the display filename (make it relative
  # to the repository root with the `:root` option of `LiveCov.Stats.build/2`).
  #
  # Options copied to the top level when given: `:service_name`,
  # `:service_job_id`, `:service_number`, `:service_pull_request`,
  # `:repo_token`, `:parallel`, `:flag_name`, `:run_at`, `:commit_sha` and
  # `:git` (a map, e.g. `%{head: %{id: sha, message: msg}, branch: "main"}`).
  # `include_source: false` omits the `source` field.

  @behaviour LiveCov.Format

  @passthrough [
    :service_name,
    :service_job_id,
    :service_number,
    :service_pull_request,
    :repo_token,
    :parallel,
    :flag_name,
    :run_at,
    :commit_sha,
    :git
  ]

  @doc "The options `render/2` reads: the top-level fields above and `:include_source`."
  @spec options() :: [atom]
  def options, do: @passthrough ++ [:include_source]

  @impl true
  def name, do: :coveralls
  @impl true
  def extension, do: "json"
  @impl true
  def filename, do: "coveralls.json"

  @impl true
  def render(%LiveCov.Stats{} = stats, opts \\ []) do
    source? = Keyword.get(opts, :include_source, true) != false

    files =
      Enum.map(stats.files, fn f ->
        base = %{
          "name" => f.filename,
          "source_digest" => f.digest,
          "coverage" => Enum.map(f.source, & &1.coverage)
        }

        if source?, do: Map.put(base, "source", LiveCov.Stats.Source.text(f)), else: base
      end)

    extra = for k <- @passthrough, Keyword.has_key?(opts, k), into: %{}, do: {k, opts[k]}

    LiveCov.JSON.encode!(Map.put(extra, "source_files", files))
  end
end
